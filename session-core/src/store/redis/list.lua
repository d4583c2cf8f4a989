-- A user's live sessions, oldest first, pruning index entries whose session has ended.
-- KEYS[1] the user's index; ARGV[1] prefix of session keys.
-- Returns a flat array: member, record, member, record, ...
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.pcall('GET', ARGV[1] .. m)
  if type(v) == 'string' then
    out[#out + 1] = m
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
