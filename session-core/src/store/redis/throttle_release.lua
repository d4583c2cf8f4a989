-- Un-count one attempt that throttle_check counted and that succeeded, keeping the others
-- (per-address counting: a success must not wipe the failures). KEYS[1] the attempt counter.
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n > 0 then redis.call('DECR', KEYS[1]) end   -- DECR keeps the TTL
return 0
