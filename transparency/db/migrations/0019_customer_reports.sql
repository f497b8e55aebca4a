-- Reports customers send about a product whose code did not check out. Nothing personal
-- is asked for: where it was bought (a shop's name or a web address), an optional photo
-- and an optional ISO 3166 region. The brand is the one the code names (a registered
-- unit's, or the owner of the key id a forgery carries); null when the code names none,
-- and then only operators see the report.
create table customer_reports (
    id          uuid primary key,
    brand_id    uuid references brands (id),
    code        text not null check (length(code) between 1 and 4096),
    reason      text,           -- why the check refused the code (forged, unknown ...)
    unit_state  text,           -- the unit's state when reported; null: the code names none
    place       text not null check (length(place) between 1 and 500),
    region      char(2) check (region ~ '^[A-Z]{2}$'),
    note        text check (length(note) <= 2000),
    photo       bytea,
    photo_type  text check (photo_type in ('image/jpeg', 'image/png', 'image/webp')),
    created_at  timestamptz not null default now(),
    check ((photo is null) = (photo_type is null))
);
-- A brand reads its reports newest first, a page at a time.
create index customer_reports_brand_idx on customer_reports (brand_id, created_at desc, id desc);
