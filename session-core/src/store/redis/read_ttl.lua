-- Read a session and its remaining TTL (Redis Cluster rotation, step 1).
-- KEYS[1] session key. Returns {value, pttl}, {'', 0} for a value of another type, or false.
local v = redis.pcall('GET', KEYS[1])
if not v then return false end
if type(v) ~= 'string' then return {'', 0} end
return {v, redis.call('PTTL', KEYS[1])}
