-- Record a user's role change and list the sessions to apply it to (Redis Cluster: the
-- index's slot only; the caller splices each session in its own slot).
-- KEYS[1] the user's index, KEYS[2] the user's last role change (same slot);
-- ARGV[1] the new roles block, ARGV[2] how long it also applies to new sessions (ms).
-- Returns every member of the index, oldest first.
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return redis.call('ZRANGE', KEYS[1], 0, -1)
