-- Forged scans naming a brand's key id carry that brand's id (older ones carry none: scan
-- events are append-only). The brand lists them newest first and counts them per day: a
-- look-up in this index, which holds forgeries only, rather than a walk over every event
-- of the brand (millions of passes and customer checks to find a handful of forgeries).
create index scan_events_forged_brand_idx on scan_events (brand_id, scanned_at)
    where reason = 'forged';
