-- Replace roles and permissions on every live session of a user, keeping everything else.
-- KEYS[1] the user's index, KEYS[2] the user's last role change; ARGV[1] prefix of session
-- keys, ARGV[2] the new block (2-byte length + encoded roles and permissions), ARGV[3] how long
-- the block also applies to new sessions (ms): logins in flight now create theirs with it.
-- Returns how many sessions were changed.
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[1] .. m
  local v = redis.pcall('GET', k)
  if not v then
    redis.call('ZREM', KEYS[1], m)
  elseif is_record(v) then
    local head, len = authz_span(v)
    if head then
      redis.call('SET', k, string.sub(v, 1, head) .. ARGV[2] .. string.sub(v, head + len + 1), 'KEEPTTL')
      n = n + 1
    end
  end
end
return n
