-- Inside a writing transaction, just before commit: do we still hold the job lock?
SELECT holder FROM job_lock WHERE name = :name AND holder = :me FOR SHARE
