-- A user's live sessions, oldest first, pruning index entries whose session has ended.
-- KEYS[1] the user's index; ARGV[1] prefix of session keys.
-- Returns a flat array: member, record, remaining TTL (ms), member, record, TTL, ...
-- (the TTL tells when the session was last used: each load sets it to the idle timeout).
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[1] .. m
  local v = redis.pcall('GET', k)
  if type(v) == 'string' then
    out[#out + 1] = m
    out[#out + 1] = v
    out[#out + 1] = redis.call('PTTL', k)
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
