-- The claim of one unit and the customer check as functions of the unit's code, made on
-- every engine, used on Citus (0030, deploy/citus.md): distributed with units, each call
-- is handed to the node that holds its code, where every statement below touches one
-- shard of units and of scan_events and the node's copies of the small tables. A statement
-- that wrote units and scan_events from one CTE was split by Citus into steps through the
-- coordinator (15-24 ms a claim against 1.5 ms). Plain PostgreSQL keeps running the
-- statements of db/scans.py, 10% faster than these (PL/pgSQL's own cost);
-- tests/integration/test_citus_rules.py holds both to the same answers, events and units.
--
-- The decisions are the domain's (transparency/domain/verification.py: BLOCKING_STATES;
-- a batch's units count once it is 'done'), written out here as constants; the same test
-- holds them equal.

-- One unit key claimed for a shipment: locks the unit (a concurrent claim of the same code
-- waits, then sees its result), decides, ships it when it passes, appends the scan event.
-- Answers the columns of domain.verification.Claimed, in order; a code that names no unit
-- of a finished batch answers 'unknown' and nulls.
create function claim_unit(
    p_code text, p_gtin text, p_site uuid, p_shipment text, p_api_key text
) returns table (
    reason text, state text, gtin text, name text, lot text, expiry date, product_id uuid,
    brand_id uuid, shipped_at timestamptz, shipped_site_id uuid
) language plpgsql as $$
#variable_conflict use_column
declare
    u record;
    why text;
    shipped timestamptz;
begin
    select x.state, x.shipped_at, x.shipped_site_id, x.shipment_id, x.brand_id,
           x.product_id, x.lot, x.expiry, p.gtin::text as gtin, p.name
    into u
    from units x
    join products p on p.id = x.product_id
    join code_batches b on b.id = x.batch_id
    where x.code = p_code and b.status = 'done'
    for update of x;
    if not found then
        insert into scan_events (code, kind, result, reason, site_id, api_key_id, shipment_id)
        values (p_code, 'fulfilment', 'fail', 'unknown', p_site, p_api_key, p_shipment);
        return query select 'unknown', null::text, null::text, null::text, null::text,
            null::date, null::uuid, null::uuid, null::timestamptz, null::uuid;
        return;
    end if;
    why := case
        when u.gtin <> p_gtin then 'wrong_product'
        when u.state = 'active' then null
        when u.state = 'shipped' and u.shipment_id = p_shipment and u.shipped_site_id = p_site
            then null  -- the same station retrying the same shipment: its first answer
        else case u.state
            when 'shipped' then 'already_shipped'
            when 'revoked' then 'revoked'
            when 'destroyed' then 'revoked'
            when 'stolen' then 'revoked'
            when 'recalled' then 'recalled'
            when 'returned' then 'not_active'
        end
    end;
    if why is null and u.state = 'active' then
        update units set state = 'shipped', shipped_at = now(), shipped_site_id = p_site,
                         shipment_id = p_shipment, updated_at = now(), scans_since_shipping = 0
        where code = p_code;
        shipped := now();
    end if;
    insert into scan_events (code, kind, result, reason, brand_id, product_id, site_id,
                             api_key_id, shipment_id)
    values (p_code, 'fulfilment', case when why is null then 'pass' else 'fail' end, why,
            u.brand_id, u.product_id, p_site, p_api_key, p_shipment);
    return query select why, u.state::text, u.gtin, u.name, u.lot, u.expiry, u.product_id,
        u.brand_id, coalesce(shipped, u.shipped_at),
        case when shipped is not null then p_site else u.shipped_site_id end;
end $$;

-- A customer scan of a unit of a finished batch: bumps the unit's counters (the claims and
-- db/scans.move keep them too), appends the event and answers what the customer is shown.
-- No row: the code names no such unit.
create function customer_scan(p_code text, p_region text) returns table (
    state text, lot text, expiry date, shipped_at timestamptz, suspicious_at timestamptz,
    gtin text, name text, image_url text, brand_id uuid, brand_name text,
    brand_logo_url text, brand_support text, brand_recall_instructions text,
    attributes jsonb, customer_scans integer, regions integer, scans_after_shipping integer,
    channel text, status_reason text, status_instructions text
) language plpgsql as $$
#variable_conflict use_column
declare
    u record;
begin
    update units x
    set customer_scans = x.customer_scans + 1,
        -- a set of ISO 3166 codes (validated at the edge): at most 676 entries
        scan_regions = case when p_region is null or p_region = any(x.scan_regions)
                            then x.scan_regions else x.scan_regions || p_region end,
        scans_since_shipping = x.scans_since_shipping + (x.shipped_at is not null)::int
    from code_batches b
    where x.code = p_code and b.id = x.batch_id and b.status = 'done'
    returning x.state, x.lot, x.expiry, x.shipped_at, x.suspicious_at, x.brand_id,
              x.product_id, b.attributes, x.customer_scans,
              cardinality(x.scan_regions) as regions, x.scans_since_shipping,
              x.status_reason, x.status_instructions
    into u;
    if not found then
        return;
    end if;
    insert into scan_events (code, kind, result, brand_id, product_id, region)
    values (p_code, 'customer', 'scanned', u.brand_id, u.product_id, p_region);
    return query
    select u.state::text, u.lot, u.expiry, u.shipped_at, u.suspicious_at, p.gtin::text,
        p.name, p.image_url, br.id, coalesce(br.display_name, br.name), br.logo_url,
        br.support, br.recall_instructions,
        -- the facts shown: the batch's (made when, where) over the product's, key by key
        p.attributes || u.attributes,
        u.customer_scans, u.regions, u.scans_since_shipping, p.channel, u.status_reason,
        u.status_instructions
    from products p, brands br
    where p.id = u.product_id and br.id = u.brand_id;
end $$;
