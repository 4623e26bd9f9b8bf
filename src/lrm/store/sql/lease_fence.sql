-- statement_timestamp(), not now(): now() is frozen at the start of the surrounding transaction.
-- Inside a writing transaction, just before commit: are we still the holder with this epoch?
-- FOR SHARE blocks a takeover until our commit is done.
SELECT epoch FROM ha_lease
WHERE name = :name AND holder = :me AND epoch = :epoch AND expires_at > statement_timestamp()
FOR SHARE
