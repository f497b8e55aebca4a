-- Every API process looks for the signing keys made, retired or revoked lately every few
-- seconds (its keyring's catch-up, db/signing_keys.statuses): a range of this index, not a
-- scan of up to 4,194,303 keys.
create index signing_keys_changed_idx
    on signing_keys ((greatest(created_at, retired_at, revoked_at)));
