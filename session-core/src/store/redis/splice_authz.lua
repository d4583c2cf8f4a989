-- Replace the roles and permissions of one session (Redis Cluster: one slot per call).
-- KEYS[1] session key; ARGV[1] the new block (2-byte length + encoded roles and permissions).
-- Returns 1 when changed, 0 when the session is gone, -1 for a value that is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
-- Record layout: see record.rs (version 2: the head is 28 + user id + label bytes).
if type(v) ~= 'string' or #v < 26 or string.byte(v, 1) ~= 2 then return -1 end
local ulen = string.byte(v, 26)
if #v < 28 + ulen then return -1 end
local head = 28 + ulen + struct.unpack('>I2', v, 27 + ulen)
if #v < head + 2 then return -1 end
local alen = struct.unpack('>I2', v, head + 1)
redis.call('SET', KEYS[1], string.sub(v, 1, head) .. ARGV[1] .. string.sub(v, head + 3 + alen), 'KEEPTTL')
return 1
