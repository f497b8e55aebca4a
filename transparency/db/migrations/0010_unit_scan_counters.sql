-- A customer check reads counters on the unit instead of counting the code's scan events
-- (270 ms with 500k events on one code). The statements that record scans keep them: the
-- customer scan bumps all three, a pass at fulfilment and a take-back to the shelf (which
-- clears shipped_at) set scans_since_shipping to 0.
--
-- Constant defaults: adding the columns rewrites no partition; the backfill below touches
-- only units that customers have scanned.
alter table units
    add column customer_scans integer not null default 0,
    -- distinct ISO 3166 codes (two letters, validated at the edge): at most 676
    add column scan_regions text[] not null default '{}',
    -- customer scans after shipped_at; 0 while the unit is not shipped
    add column scans_since_shipping integer not null default 0;

update units u
set customer_scans = s.scans,
    scan_regions = s.regions,
    scans_since_shipping = s.after_shipping
from (
    select e.code,
           count(*)::integer as scans,
           coalesce(array_agg(distinct e.region) filter (where e.region is not null), '{}')
               as regions,
           (count(*) filter (where e.scanned_at > x.shipped_at))::integer as after_shipping
    from scan_events e
    join units x on x.code = e.code
    where e.kind = 'customer'
    group by e.code
) as s
where u.code = s.code;
