-- Add a session to its user's index and return every member, oldest first (Redis Cluster:
-- the index's own slot only; the caller prunes and evicts across slots).
-- KEYS[1] the user's index, KEYS[2] the user's last role change, KEYS[3] the user's login
-- epoch (same slot); ARGV[1] member, ARGV[2] score (created ms), ARGV[3] index TTL (ms),
-- ARGV[4] the login's epoch ('' when the login read none: not checked; absent key = '0').
-- Returns {members, the last role change's block or false}, or false for a superseded login
-- (nothing indexed: the caller deletes the session it wrote).
if ARGV[4] ~= '' and (redis.call('GET', KEYS[3]) or '0') ~= ARGV[4] then return false end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('GET', KEYS[2])}
