-- Is a username locked? KEYS[1] its failure counter; ARGV[1] failures that lock.
-- Returns the lock's remaining ms, or -1 when not locked.
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return ttl end
end
return -1
