-- End all of a user's sessions (ARGV[4] = 'all') or the listed ones (ARGV[4] = 'some', ARGV[5..]).
-- Ending all also gives the user a new login epoch, so that logins in flight get no session.
-- KEYS[1] the user's index, KEYS[2] the user's login epoch; ARGV[1] prefix of session keys,
-- ARGV[2] prefix of ended-reason keys, ARGV[3] the reason's code;
-- with 'all': ARGV[5] the new epoch, ARGV[6] how long it is kept (ms).
-- Returns how many sessions were live.
local all = ARGV[4] == 'all'
local members = {}
if all then
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  for i = 5, #ARGV do members[#members + 1] = ARGV[i] end
end
local n = 0
for _, m in ipairs(members) do
  local k = ARGV[1] .. m
  if end_session(k, redis.pcall('GET', k), ARGV[2] .. m, ARGV[3]) then n = n + 1 end
  redis.call('ZREM', KEYS[1], m)
end
if all then redis.call('DEL', KEYS[1]) end
return n
