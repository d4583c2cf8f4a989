-- Add a session to its user's index and return every member, oldest first (Redis Cluster:
-- the index's own slot only; the caller prunes and evicts across slots).
-- KEYS[1] the user's index, KEYS[2] the user's last role change (same slot);
-- ARGV[1] member, ARGV[2] score (created ms), ARGV[3] index TTL (ms).
-- Returns {members, the last role change's block or false}.
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('GET', KEYS[2])}
