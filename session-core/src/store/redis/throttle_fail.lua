-- The attempt counted by throttle_check failed. KEYS[1] the username's attempt counter;
-- ARGV[1] failures that lock, ARGV[2] window (ms).
-- Returns the lock's remaining ms when the limit is reached (the lock lasts a whole window from
-- this failure), else -1.
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n >= tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return redis.call('PTTL', KEYS[1])
end
return -1
