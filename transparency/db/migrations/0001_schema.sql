-- Schema v1 for the whole product.
--
-- Units and scan events are the tables that grow to billions of rows. Both are keyed by
-- the code itself (no global sequence on the hot path) and hash-partitioned on it, so a
-- claim or a look-up touches one partition and one index, and the partition count can be
-- raised later by splitting. Everything else is small reference data.

create type unit_state as enum (
    'issued', 'active', 'shipped', 'returned',
    'revoked', 'recalled', 'destroyed', 'stolen'
);

create type api_key_role as enum ('admin', 'brand', 'station');

create table brands (
    id          uuid primary key,
    name        text not null unique check (length(name) between 1 and 200),
    created_at  timestamptz not null default now()
);

create table products (
    id              uuid primary key,
    brand_id        uuid not null references brands (id),
    gtin            char(14) not null unique check (gtin ~ '^[0-9]{14}$'),
    name            text not null check (length(name) between 1 and 300),
    attributes      jsonb not null default '{}'::jsonb check (jsonb_typeof(attributes) = 'object'),
    image_url       text,
    requires_check  boolean not null default true,
    created_at      timestamptz not null default now()
);
create index products_brand_idx on products (brand_id, created_at, id);

create table sites (
    id          uuid primary key,
    name        text not null unique check (length(name) between 1 and 200),
    region      text,
    created_at  timestamptz not null default now()
);

create table stations (
    id          uuid primary key,
    site_id     uuid not null references sites (id),
    name        text not null check (length(name) between 1 and 200),
    created_at  timestamptz not null default now(),
    unique (site_id, name)
);

create table api_keys (
    id              text primary key,
    role            api_key_role not null,
    brand_id        uuid references brands (id),
    site_id         uuid references sites (id),
    secret_sha256   bytea not null check (length(secret_sha256) = 32),
    label           text,
    created_at      timestamptz not null default now(),
    revoked_at      timestamptz,
    -- each role carries exactly the scope it needs
    check (
        (role = 'admin' and brand_id is null and site_id is null)
        or (role = 'brand' and brand_id is not null and site_id is null)
        or (role = 'station' and site_id is not null and brand_id is null)
    )
);

-- Signing keys: an HMAC secret and an Ed25519 pair per key id. Private material is
-- stored only encrypted (AES-GCM under a data key wrapped by the master key).
create table signing_keys (
    id                  integer primary key generated always as identity,
    brand_id            uuid not null references brands (id),
    status              text not null default 'active'
                        check (status in ('active', 'retired', 'revoked')),
    hmac_secret_enc     bytea not null,
    ed25519_private_enc bytea not null,
    ed25519_public      bytea not null check (length(ed25519_public) = 32),
    created_at          timestamptz not null default now(),
    retired_at          timestamptz,
    revoked_at          timestamptz
);
create unique index signing_keys_one_active on signing_keys (brand_id) where status = 'active';

-- A batch of codes: issued by us, or imported from the brand's own serials.
create table code_batches (
    id            uuid primary key,
    brand_id      uuid not null references brands (id),
    product_id    uuid not null references products (id),
    kind          text not null check (kind in ('issue', 'import')),
    format        text not null,
    requested     bigint not null check (requested between 1 and 10000000),
    lot           text,
    expiry        date,
    attributes    jsonb not null default '{}'::jsonb,
    status        text not null default 'pending'
                  check (status in ('pending', 'running', 'done', 'failed')),
    progress      bigint not null default 0,
    content_sha256 bytea,
    report        jsonb,
    created_at    timestamptz not null default now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text
);
create index code_batches_brand_idx on code_batches (brand_id, created_at);
create unique index code_batches_import_once on code_batches (product_id, content_sha256)
    where content_sha256 is not null;

create table units (
    code             text not null,
    brand_id         uuid not null,
    product_id       uuid not null,
    batch_id         uuid not null,
    lot              text,
    expiry           date,
    state            unit_state not null,
    issued_at        timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    shipped_at       timestamptz,
    shipped_site_id  uuid,
    primary key (code)
) partition by hash (code);

create table units_p0 partition of units for values with (modulus 8, remainder 0);
create table units_p1 partition of units for values with (modulus 8, remainder 1);
create table units_p2 partition of units for values with (modulus 8, remainder 2);
create table units_p3 partition of units for values with (modulus 8, remainder 3);
create table units_p4 partition of units for values with (modulus 8, remainder 4);
create table units_p5 partition of units for values with (modulus 8, remainder 5);
create table units_p6 partition of units for values with (modulus 8, remainder 6);
create table units_p7 partition of units for values with (modulus 8, remainder 7);

-- Append-only: every fulfilment check and customer scan, pass or fail.
create table scan_events (
    code         text not null,
    id           uuid not null,
    scanned_at   timestamptz not null default now(),
    kind         text not null check (kind in ('fulfilment', 'customer', 'reversal', 'return')),
    result       text not null,
    reason       text,
    brand_id     uuid,
    product_id   uuid,
    site_id      uuid,
    api_key_id   text,
    shipment_id  text,
    region       text,
    primary key (code, id)
) partition by hash (code);

create table scan_events_p0 partition of scan_events for values with (modulus 8, remainder 0);
create table scan_events_p1 partition of scan_events for values with (modulus 8, remainder 1);
create table scan_events_p2 partition of scan_events for values with (modulus 8, remainder 2);
create table scan_events_p3 partition of scan_events for values with (modulus 8, remainder 3);
create table scan_events_p4 partition of scan_events for values with (modulus 8, remainder 4);
create table scan_events_p5 partition of scan_events for values with (modulus 8, remainder 5);
create table scan_events_p6 partition of scan_events for values with (modulus 8, remainder 6);
create table scan_events_p7 partition of scan_events for values with (modulus 8, remainder 7);

create function scan_events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'scan_events is append-only';
end $$;
create trigger scan_events_no_update before update or delete on scan_events
    for each row execute function scan_events_append_only();

create table audit_log (
    id          bigint primary key generated always as identity,
    at          timestamptz not null default now(),
    api_key_id  text,
    brand_id    uuid,
    action      text not null,
    target      text,
    detail      jsonb not null default '{}'::jsonb
);
create index audit_log_brand_idx on audit_log (brand_id, at);
