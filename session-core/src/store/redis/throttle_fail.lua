-- The attempt counted by throttle_check failed. KEYS[1] the attempt counter (a hash, see
-- throttle_check.lua); ARGV[1] failures that lock, ARGV[2] window (ms).
-- Returns the lock's remaining ms when the failures reach the limit (the lock lasts a whole
-- window from this failure), else -1. A counter cleared meanwhile (a success) stays cleared.
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return -1 end
if redis.call('HINCRBY', KEYS[1], 'f', 1) >= tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return redis.call('PTTL', KEYS[1])
end
return -1
