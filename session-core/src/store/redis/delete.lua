-- End one session and drop it from its user's index.
-- KEYS[1] session key; ARGV[1] prefix of index keys, ARGV[2] member.
-- Returns 1 when a session was deleted, 0 when there was none.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
if is_record(v) and user_of(v) ~= '' then                -- anonymous: in no index
  redis.call('ZREM', ARGV[1] .. user_of(v), ARGV[2])
end
return 1
