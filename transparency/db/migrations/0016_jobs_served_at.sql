-- When a runner last took a batch up (claimed it, or took it back after handing it over
-- between two chunks): the job claim serves first the brand whose batches were served
-- longest ago. started_at cannot say it: it is the batch's first start, and a brand's big
-- batch that hands its runner over keeps it, so that brand would always come first again.
alter table code_batches add column served_at timestamptz;
update code_batches set served_at = started_at;
create index code_batches_served_brand_idx on code_batches (brand_id, served_at);
