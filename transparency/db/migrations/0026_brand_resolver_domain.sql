-- The origin on which a brand's GS1 labels print their Digital Link URIs: its own domain
-- (which sends /01/... on to this service's resolver), else the service's public URL. An
-- https origin in lower case: scheme and host, maybe a port, no path.
alter table brands add column resolver_domain text check (
    resolver_domain ~ '^https://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$'
);
