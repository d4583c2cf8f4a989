-- Replace a session's application data, keeping the header, roles and TTL.
-- KEYS[1] session key; ARGV[1] the new data bytes.
-- Returns 1 when saved, 0 when there is no session, -1 when the record is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
-- a value of another type (WRONGTYPE), foreign or truncated bytes: not a session of ours
if not is_record(v) then return -1 end
local head, len = authz_span(v)
if not head then return -1 end
redis.call('SET', KEYS[1], string.sub(v, 1, head + len) .. ARGV[1], 'KEEPTTL')
return 1
