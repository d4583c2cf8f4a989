-- Begin a login attempt: refuse it while the username is locked, else count it.
-- KEYS[1] the username's attempt counter; ARGV[1] failures that lock, ARGV[2] window (ms).
-- Returns the lock's remaining ms, or -1 when the attempt may proceed (and was counted).
local limit = tonumber(ARGV[1])
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n >= limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return ttl end
  redis.call('DEL', KEYS[1])                 -- a counter without expiry: start afresh
end
-- Counted before the password is checked, so parallel guesses cannot exceed the limit.
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return -1
