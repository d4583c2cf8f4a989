-- End every session of a user except one (after a password change, say), and give the user a
-- new login epoch, so that logins in flight get no session.
-- KEYS[1] the user's index, KEYS[2] the user's login epoch; ARGV[1] prefix of session keys,
-- ARGV[2] the member to keep, ARGV[3] the new epoch, ARGV[4] how long it is kept (ms),
-- ARGV[5] prefix of ended-reason keys, ARGV[6] the reason's code.
-- Returns how many sessions were live.
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then
    local k = ARGV[1] .. m
    if end_session(k, redis.pcall('GET', k), ARGV[5] .. m, ARGV[6]) then n = n + 1 end
    redis.call('ZREM', KEYS[1], m)
  end
end
return n
