-- Every claim of a job draws a new token, and its holder's renewals, progress and end name
-- it: a process whose lease ran out (paused, cut off from the database) can no longer write
-- over the process that took the job over.
alter table code_batches add column lease_token uuid;
