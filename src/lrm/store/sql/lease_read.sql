SELECT holder, epoch, expires_at, renewed_at, acquired_at, released_by, released_at,
       statement_timestamp() AS db_now
FROM ha_lease WHERE name = :name
