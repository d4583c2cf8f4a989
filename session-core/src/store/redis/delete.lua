-- End one session and drop it from its user's index.
-- KEYS[1] session key; ARGV[1] prefix of index keys, ARGV[2] member.
-- Returns 1 when a session was deleted, 0 when there was none.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
if type(v) ~= 'string' then return 1 end
-- Record layout: see record.rs (version 2: the user id's length at byte 26, the id after it).
if #v >= 26 and string.byte(v, 1) == 2 then
  local ulen = string.byte(v, 26)
  redis.call('ZREM', ARGV[1] .. string.sub(v, 27, 26 + ulen), ARGV[2])
end
return 1
