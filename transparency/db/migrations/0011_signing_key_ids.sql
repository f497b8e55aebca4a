-- Key ids travel inside every code: 13 bits in version 1, 22 bits in version 2 (see
-- transparency/domain/codes.py), so the platform holds up to 4,194,303 signing keys.
alter table signing_keys drop constraint signing_keys_id_fits_codes;
alter table signing_keys add constraint signing_keys_id_fits_codes
    check (id between 1 and 4194303);
-- The identity stops at the same number, so running out fails in nextval() with its own
-- error (answered 503 /problems/key-space-exhausted), before any key is sealed.
alter table signing_keys alter column id set maxvalue 4194303;
-- A brand's keys of the last 24 hours are counted on every rotation (the per-brand cap).
create index signing_keys_brand_created_idx on signing_keys (brand_id, created_at);
