-- An import's refused rows, a page per piece of its file rather than a row each: a file of
-- a million repeats once inserted a million rows here, about nine seconds of PostgreSQL's
-- CPU at full priority beside the stations' claims (bench_faults.py, hostile import). A
-- page holds its rows as JSON lines, [position, reason, detail] in file order, compressed
-- by the job process (zlib; compressed = false: a page this migration made of old rows).
create table import_rejection_pages (
    batch_id   uuid not null references code_batches (id),
    page       integer not null,
    rows       integer not null check (rows > 0),
    compressed boolean not null,
    lines      bytea not null,
    primary key (batch_id, page)
);
-- Compressed already: PostgreSQL need not try again.
alter table import_rejection_pages alter column lines set storage external;

insert into import_rejection_pages (batch_id, page, rows, compressed, lines)
select batch_id, 0, count(*), false,
       convert_to(string_agg(json_build_array(position, reason, detail)::text, E'\n'
                             order by seq), 'UTF8')
from import_rejections
group by batch_id;

drop table import_rejections;
