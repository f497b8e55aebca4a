-- The links a brand attaches to its GS1 Digital Link URIs, which the resolver at /01/...
-- serves: at the product (GTIN), a lot of it (GTIN + 10) or a unit (GTIN + 21). Each is
-- typed with a GS1 Web Vocabulary term (the domain checks it is one: resolver.LINK_TYPES),
-- points at an https target, and has a title, and optionally a language, media type and
-- context. A link belongs to its product's brand: every query reaches it through
-- products.brand_id.
create table resolver_links (
    id          uuid primary key,
    product_id  uuid not null references products (id),
    level       text not null check (level in ('product', 'lot', 'unit')),
    lot         text check (length(lot) between 1 and 20),
    serial      text check (length(serial) between 1 and 20),
    link_type   text not null check (link_type ~ '^[A-Za-z]{1,64}$'),
    href        text not null check (href ~ '^https://' and length(href) <= 2000),
    title       text not null check (length(title) between 1 and 200),
    language    text check (language ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    media_type  text check (length(media_type) between 3 and 127),
    context     text check (context ~ '^[A-Za-z0-9_.-]{1,64}$'),
    is_default  boolean not null default false,
    created_at  timestamptz not null default now(),
    -- the level says which of lot and serial name the thing linked
    check (
        (level = 'product' and lot is null and serial is null)
        or (level = 'lot' and lot is not null and serial is null)
        or (level = 'unit' and serial is not null and lot is null)
    )
);

-- A resolution reads one product's links at its three levels.
create index resolver_links_product_idx on resolver_links (product_id, level, created_at, id);

-- At most one default link per product, lot or unit (GS1-Conformant Resolver 2.5.8).
create unique index resolver_links_one_default
    on resolver_links (product_id, level, coalesce(lot, ''), coalesce(serial, ''))
    where is_default;
