UPDATE job_lock SET heartbeat_at = statement_timestamp(), run_id = COALESCE(:run_id, run_id)
WHERE name = :name AND holder = :me
RETURNING heartbeat_at
