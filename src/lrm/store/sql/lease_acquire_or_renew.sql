-- Take or renew the HA lease in one statement on the database clock.
-- Renew: we hold it and it has not expired (epoch unchanged).
-- Acquire: nobody holds it, or it expired; the epoch rises by one (also when we re-acquire our
-- own expired lease: a primary that stepped down must never reuse its old epoch).
-- An instance that released the lease gracefully waits one TTL before competing again.
INSERT INTO ha_lease AS l (name, holder, epoch, acquired_at, renewed_at, expires_at)
VALUES (:name, :me, 1, statement_timestamp(), statement_timestamp(), statement_timestamp() + make_interval(secs => :ttl_s))
ON CONFLICT (name) DO UPDATE SET
    holder = :me,
    epoch = CASE WHEN l.holder = :me AND l.expires_at > statement_timestamp() THEN l.epoch ELSE l.epoch + 1 END,
    acquired_at = CASE WHEN l.holder = :me AND l.expires_at > statement_timestamp() THEN l.acquired_at ELSE statement_timestamp() END,
    renewed_at = statement_timestamp(),
    expires_at = statement_timestamp() + make_interval(secs => :ttl_s),
    released_by = NULL,
    released_at = NULL
WHERE (l.holder = :me AND l.expires_at > statement_timestamp())
   OR ((l.holder IS NULL OR l.expires_at <= statement_timestamp())
       AND NOT (l.released_by IS NOT DISTINCT FROM :me
                AND l.released_at > statement_timestamp() - make_interval(secs => :ttl_s)))
RETURNING l.holder, l.epoch, l.expires_at, statement_timestamp() AS db_now
