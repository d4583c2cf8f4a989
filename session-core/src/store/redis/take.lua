-- Delete a session key and return what it held (Redis Cluster: the session's own slot only).
-- KEYS[1] session key. Returns the old value, '' for a value of another type, false if none.
local v = redis.pcall('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
if type(v) ~= 'string' then return '' end
return v
