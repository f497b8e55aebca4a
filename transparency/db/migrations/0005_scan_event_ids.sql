-- Refused scans are buffered and written with COPY: PostgreSQL names them, not the API
-- process (a random UUID per refusal was a kernel call on the refusal's hot path).
alter table scan_events alter column id set default gen_random_uuid();
