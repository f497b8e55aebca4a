-- Codes: envelope-encrypted signing keys, issuance job leases, batch look-ups.

-- Key ids travel inside every code in 13 bits.
alter table signing_keys add constraint signing_keys_id_fits_codes check (id between 1 and 8191);
-- The key's own data key, wrapped (AES-GCM) by the master key named by its fingerprint.
alter table signing_keys add column wrapped_dek bytea not null;
alter table signing_keys add column kek_fingerprint text not null;
create index signing_keys_brand_idx on signing_keys (brand_id, id);

-- A job is run by whichever service process holds its lease; an expired lease means the
-- holder died, and another process (or the same one after a restart) resumes the job.
alter table code_batches add column lease_until timestamptz;
alter table code_batches add column options jsonb not null default '{}'::jsonb;
create index code_batches_runnable_idx on code_batches (created_at)
    where status in ('pending', 'running');

-- Downloads read a batch's units.
create index units_batch_idx on units (batch_id);

-- An import's row count is known only once its file is parsed.
alter table code_batches drop constraint code_batches_requested_check;
alter table code_batches add constraint code_batches_requested_check
    check (requested between 0 and 10000000);

-- An import's file, kept until its job has run (then emptied).
create table import_uploads (
    batch_id      uuid primary key references code_batches (id),
    content_type  text not null,
    mode          text not null check (mode in ('all_or_nothing', 'accept_valid')),
    content       bytea not null
);

-- Every row an import refused, with its line (or position) and reason.
create table import_rejections (
    batch_id  uuid not null references code_batches (id),
    position  text not null,
    seq       integer not null,
    reason    text not null,
    detail    text not null,
    primary key (batch_id, seq)
);
