-- An Idempotency-Key is reserved before its request is answered, not recorded after:
-- two requests sent at once under one key with different bodies once both claimed their
-- unit, and the later was told 422 while its unit stayed shipped. A reservation is a row
-- with no reply yet; reserved_at says when, so that one whose holder died can be taken
-- over by a retry.
alter table fulfilment_replies alter column reply drop not null;
alter table fulfilment_replies add column reserved_at timestamptz not null default now();
