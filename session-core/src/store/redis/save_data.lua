-- Replace a session's application data, keeping the header, roles and TTL.
-- KEYS[1] session key; ARGV[1] the new data bytes.
-- Returns 1 when saved, 0 when there is no session, -1 when the record is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
-- a value of another type (WRONGTYPE): foreign data, not a session
if type(v) ~= 'string' then return -1 end
-- Record layout: see record.rs (version 2: the user id's length at byte 26, the label's
-- 2-byte length after the id, then the roles block's 2-byte length after the label).
if #v < 26 or string.byte(v, 1) ~= 2 then return -1 end
local ulen = string.byte(v, 26)
if #v < 28 + ulen then return -1 end
local head = 28 + ulen + struct.unpack('>I2', v, 27 + ulen)
if #v < head + 2 then return -1 end
local alen = struct.unpack('>I2', v, head + 1)
if #v < head + 2 + alen then return -1 end
redis.call('SET', KEYS[1], string.sub(v, 1, head + 2 + alen) .. ARGV[1], 'KEEPTTL')
return 1
