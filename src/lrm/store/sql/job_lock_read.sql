SELECT holder, epoch, run_id, acquired_at, heartbeat_at, statement_timestamp() AS db_now
FROM job_lock WHERE name = :name
