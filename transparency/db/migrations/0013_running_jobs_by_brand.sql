-- The job claim skips a brand that has a job running (one at a time per brand, so no
-- brand's batches hold every runner): finding that job is a look-up in this small index,
-- not a walk over every batch the brand ever made.
create index code_batches_running_brand_idx on code_batches (brand_id) where status = 'running';
