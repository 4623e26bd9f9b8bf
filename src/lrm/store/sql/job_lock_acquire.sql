-- Take the nightly job lock when it is free or its holder's heartbeat lapsed.
INSERT INTO job_lock AS j (name, holder, epoch, acquired_at, heartbeat_at)
VALUES (:name, :me, :epoch, statement_timestamp(), statement_timestamp())
ON CONFLICT (name) DO UPDATE SET
    holder = :me, epoch = :epoch, run_id = NULL, acquired_at = statement_timestamp(), heartbeat_at = statement_timestamp()
WHERE j.holder IS NULL OR j.heartbeat_at < statement_timestamp() - make_interval(secs => :stale_s)
RETURNING j.holder
