-- Scale-out on Citus (deploy/citus.md): when the citus extension is installed in this
-- database, the tables are distributed over its workers; on plain PostgreSQL this does
-- nothing at all.
--
-- Code-keyed tables (units, scan_events) are sharded by code and co-located, so a unit and
-- its events live on one node and a claim runs there alone. The small tables every query
-- joins (brands, products, batches, keys ...) become reference tables: a copy on every
-- node, joined locally. The claim and the customer check are functions (0029)
-- distributed with units: the coordinator hands each call to the node that holds its
-- code. A tote calls the claim function once per code, each code's statements routed to
-- its own node. The workers must be added (citus_add_node) before this runs.
--
-- Distributing one more table is one line: its name in `by_code` (has a `code` column and
-- its keys include it), `reference` (small, joined by everyone; after the tables it
-- references) or `by_own_key` (grows, but holds no unit: sharded on the column named,
-- which its keys include). tests/integration/test_citus_rules.py fails on a table of the
-- schema that is in none of them.
do $$
declare
    by_code constant text[] := array[
        'units',
        'scan_events'
    ];
    reference constant text[] := array[
        'brands',
        'sites',
        'products',
        'stations',
        'api_keys',
        'signing_keys',
        'code_batches',
        'import_uploads',
        'import_rejection_pages',
        'brand_gs1_prefixes',
        'customer_reports',
        'console_sessions',
        'audit_log',
        'resolver_links',
        'epcis_captures'
    ];
    -- table, distribution column (tables sharded on a column of one type are co-located)
    by_own_key constant text[][] := array[
        ['fulfilment_replies', 'api_key_id'],
        ['epcis_events', 'brand_id'],
        ['epcis_event_epcs', 'brand_id']
    ];
    -- name(argument types), argument that holds the code
    by_code_functions constant text[][] := array[
        ['claim_unit(text,text,uuid,text,text)', 'p_code'],
        ['customer_scan(text,text)', 'p_code']
    ];
    t text;
    pair text[];
    fk record;
    foreign_keys text[] := '{}';
begin
    if not exists (select from pg_extension where extname = 'citus') then
        return;
    end if;
    -- scan_events keeps its append-only trigger on every shard: the trigger only raises,
    -- it reads no other table (the one documented trigger, deploy/citus.md).
    perform set_config('citus.enable_unsafe_triggers', 'on', true);
    -- A migration's DDL and the shards' creation in one transaction: sequential mode.
    perform set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- A table that references a reference table is made a Citus-managed local table when
    -- that reference table is made, and such a table with an identity column can no
    -- longer be distributed: the sharded tables' foreign keys wait until the end.
    for fk in
        select c.conrelid::regclass as tab, c.conname, pg_get_constraintdef(c.oid) as def
        from pg_constraint c
        where c.contype = 'f'
          and c.conrelid::regclass::text in (
              select unnest(by_code) union all select by_own_key[i][1]
              from generate_subscripts(by_own_key, 1) as i)
    loop
        execute format('alter table %s drop constraint %I', fk.tab, fk.conname);
        foreign_keys := foreign_keys
            || format('alter table %s add constraint %I %s', fk.tab, fk.conname, fk.def);
    end loop;
    foreach t in array reference loop
        perform create_reference_table(t);
    end loop;
    perform create_distributed_table(by_code[1], 'code');
    foreach t in array by_code[2:] loop
        perform create_distributed_table(t, 'code', colocate_with => by_code[1]);
    end loop;
    foreach pair slice 1 in array by_own_key loop
        perform create_distributed_table(pair[1], pair[2]);
    end loop;
    foreach t in array foreign_keys loop
        execute t;
    end loop;
    foreach pair slice 1 in array by_code_functions loop
        perform create_distributed_function(
            pair[1]::regprocedure, distribution_arg_name => pair[2], colocate_with => by_code[1]
        );
    end loop;
end $$;
