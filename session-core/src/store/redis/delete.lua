-- End one session (a logout) and drop it from its user's index.
-- KEYS[1] session key, KEYS[2] its ended-reason key; ARGV[1] prefix of index keys, ARGV[2]
-- member, ARGV[3] the reason's code.
-- Returns 1 when a session was deleted, 0 when there was none.
local v = redis.pcall('GET', KEYS[1])
if not end_session(KEYS[1], v, KEYS[2], ARGV[3]) then return 0 end
if is_record(v) and user_of(v) ~= '' then                -- anonymous: in no index
  redis.call('ZREM', ARGV[1] .. user_of(v), ARGV[2])
end
return 1
