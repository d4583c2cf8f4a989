-- Replace the roles and permissions of one session (Redis Cluster: one slot per call).
-- KEYS[1] session key; ARGV[1] the new block (2-byte length + encoded roles and permissions).
-- Returns 1 when changed, 0 when the session is gone, -1 for a value that is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
if not is_record(v) then return -1 end
local head, len = authz_span(v)
if not head then return -1 end
redis.call('SET', KEYS[1], string.sub(v, 1, head) .. ARGV[1] .. string.sub(v, head + len + 1), 'KEEPTTL')
return 1
