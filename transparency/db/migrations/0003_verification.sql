-- Verification: fulfilment claims, idempotent replies, customer scans, clone signals.

-- The shipment a unit left in, so that the same station retrying the same shipment gets
-- its first answer back instead of already_shipped.
alter table units add column shipment_id text;
-- Set when customer scans cross a clone threshold; the brand's dashboard counts these.
alter table units add column suspicious_at timestamptz;
alter table units add column status_reason text;

-- The first answer to each (key, Idempotency-Key): a retried request gets it back.
create table fulfilment_replies (
    api_key_id       text not null,
    idempotency_key  text not null,
    reply            jsonb not null,
    created_at       timestamptz not null default now(),
    primary key (api_key_id, idempotency_key)
);

alter table scan_events drop constraint scan_events_kind_check;
alter table scan_events add constraint scan_events_kind_check
    check (kind in ('fulfilment', 'customer', 'reversal', 'return', 'restock', 'brand'));
create index scan_events_brand_day_idx on scan_events (brand_id, scanned_at);
