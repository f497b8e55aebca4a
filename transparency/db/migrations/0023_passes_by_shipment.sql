-- A station reads back the passes recorded at its site under a shipment prefix (a load
-- test's run, a day's shipments): a range of this index, which holds fulfilment passes only
-- (about one event in three at a warehouse: the fails and customer checks stay out). The
-- shipment id is compared in code-point order ("C"), whatever the database's collation,
-- so a prefix is exactly a range [prefix, next prefix). The id orders a shipment's passes
-- for keyset paging; code and time are included, so both the list and the counts are read
-- from the index alone.
--
-- Built in the migration's transaction, as 0020's index is: CREATE INDEX CONCURRENTLY is
-- refused in a transaction, and on a partitioned table at all. The build reads every scan
-- event once while claims wait for its lock (writes only: checks and reads go on).
create index scan_events_passes_idx on scan_events (site_id, shipment_id collate "C", id)
    include (code, scanned_at)
    where kind = 'fulfilment' and result = 'pass';
