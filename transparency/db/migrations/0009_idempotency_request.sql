-- An Idempotency-Key names one request: the SHA-256 of the request it first came with is
-- kept with its reply, and the same key with another request is refused (422) instead of
-- answered with the first request's reply. Replies stored before this have none and are
-- given back as they were.
alter table fulfilment_replies add column request_sha256 bytea
    check (length(request_sha256) = 32);
