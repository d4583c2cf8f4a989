-- Un-count one attempt that throttle_check counted and that succeeded, keeping the failures
-- (per-address counting: a success must not wipe them). KEYS[1] the attempt counter (a hash,
-- see throttle_check.lua).
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'b') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'b', -1)   -- keeps the TTL
end
return 0
