-- Record a marker for the user's logins in flight and list the sessions to change (Redis
-- Cluster: the index's slot only; the caller changes each session in its own slot). The
-- marker is a role change (its roles block, which new sessions take) or a new login epoch
-- (which refuses sessions of logins that began before it).
-- KEYS[1] the user's index, KEYS[2] the marker (same slot);
-- ARGV[1] the marker's value, ARGV[2] how long it is kept (ms).
-- Returns every member of the index, oldest first.
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return redis.call('ZRANGE', KEYS[1], 0, -1)
