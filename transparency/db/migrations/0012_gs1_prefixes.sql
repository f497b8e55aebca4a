-- The GS1 company prefixes an operator assigned to each brand. A brand registers a GTIN
-- only under one of its own (the digits after the GTIN-14's indicator digit start with
-- it), so no brand can take another's GTIN first. GS1 allocates prefixes that do not
-- overlap: the assignment refuses one that extends, or is extended by, one already held.
create table brand_gs1_prefixes (
    prefix      text primary key check (prefix ~ '^[0-9]{6,12}$'),
    brand_id    uuid not null references brands (id),
    created_at  timestamptz not null default now()
);
create index brand_gs1_prefixes_brand_idx on brand_gs1_prefixes (brand_id);
