-- Replace the roles and permissions of one session (Redis Cluster: one slot per call).
-- KEYS[1] session key; ARGV[1] the new block (2-byte length + encoded roles and permissions).
-- Returns 1 when changed, 0 when the session is gone, -1 for a value that is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
if type(v) ~= 'string' or #v < 20 or string.byte(v, 1) ~= 1 then return -1 end
local ulen = string.byte(v, 20)
if #v < 22 + ulen then return -1 end
local alen = struct.unpack('>I2', v, 21 + ulen)
redis.call('SET', KEYS[1], string.sub(v, 1, 20 + ulen) .. ARGV[1] .. string.sub(v, 23 + ulen + alen), 'KEEPTTL')
return 1
