-- Count a failed login. KEYS[1] the username's failure counter; ARGV[1] failures that lock,
-- ARGV[2] window (ms).
-- Returns the lock's remaining ms when this failure reached the limit, else -1.
local n = redis.call('INCR', KEYS[1])
local limit = tonumber(ARGV[1])
-- The window starts at the first failure; reaching the limit locks for a whole window.
if n == 1 or n == limit then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= limit then return redis.call('PTTL', KEYS[1]) end
return -1
