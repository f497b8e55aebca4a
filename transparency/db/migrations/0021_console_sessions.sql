-- Sessions of the brand console: a brand key exchanged for a cookie. Only the SHA-256 of
-- the cookie's token is stored (a copy of this table signs no one in), and the session
-- holds the key it was opened with: revoking the key ends its sessions too, since every
-- look-up joins the live key.
create table console_sessions (
    token_sha256    bytea primary key check (length(token_sha256) = 32),
    api_key_id      text not null references api_keys (id),
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null
);

-- Expired sessions are deleted at each sign-in, oldest first.
create index console_sessions_expiry on console_sessions (expires_at);
