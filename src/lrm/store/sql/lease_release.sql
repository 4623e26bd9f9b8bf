-- Hand the lease over at once (graceful stop / switchover): the peer may take it immediately.
UPDATE ha_lease
SET holder = NULL, expires_at = statement_timestamp(), released_by = :me, released_at = statement_timestamp()
WHERE name = :name AND holder = :me AND epoch = :epoch
RETURNING epoch
