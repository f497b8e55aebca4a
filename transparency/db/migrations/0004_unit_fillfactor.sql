-- A unit is written once (COPY) and updated once or twice (shipped, maybe returned). Room
-- left in each page lets those updates stay on the page without touching the indexes (HOT).
-- Storage parameters live on the partitions, not on the partitioned parent.
alter table units_p0 set (fillfactor = 85);
alter table units_p1 set (fillfactor = 85);
alter table units_p2 set (fillfactor = 85);
alter table units_p3 set (fillfactor = 85);
alter table units_p4 set (fillfactor = 85);
alter table units_p5 set (fillfactor = 85);
alter table units_p6 set (fillfactor = 85);
alter table units_p7 set (fillfactor = 85);
