UPDATE job_lock SET holder = NULL, run_id = NULL WHERE name = :name AND holder = :me
