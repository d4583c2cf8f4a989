-- End all of a user's sessions (ARGV[2] = 'all') or the listed ones (ARGV[2] = 'some', ARGV[3..]).
-- Ending all also gives the user a new login epoch, so that logins in flight get no session.
-- KEYS[1] the user's index, KEYS[2] the user's login epoch; ARGV[1] prefix of session keys;
-- with 'all': ARGV[3] the new epoch, ARGV[4] how long it is kept (ms).
-- Returns how many sessions were live.
local all = ARGV[2] == 'all'
local members = {}
if all then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  for i = 3, #ARGV do members[#members + 1] = ARGV[i] end
end
local n = 0
for _, m in ipairs(members) do
  n = n + redis.call('DEL', ARGV[1] .. m)
  redis.call('ZREM', KEYS[1], m)
end
if all then redis.call('DEL', KEYS[1]) end
return n
