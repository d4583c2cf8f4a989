-- Replace a session's application data, keeping the header, roles and TTL.
-- KEYS[1] session key; ARGV[1] the new data bytes.
-- Returns 1 when saved, 0 when there is no session, -1 when the record is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
-- a value of another type (WRONGTYPE): foreign data, not a session
if type(v) ~= 'string' then return -1 end
if #v < 20 or string.byte(v, 1) ~= 1 then return -1 end
local ulen = string.byte(v, 20)
if #v < 22 + ulen then return -1 end
local alen = struct.unpack('>I2', v, 21 + ulen)
if #v < 22 + ulen + alen then return -1 end
redis.call('SET', KEYS[1], string.sub(v, 1, 22 + ulen + alen) .. ARGV[1], 'KEEPTTL')
return 1
