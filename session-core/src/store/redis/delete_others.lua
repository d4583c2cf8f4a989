-- End every session of a user except one (after a password change, say).
-- KEYS[1] the user's index; ARGV[1] prefix of session keys, ARGV[2] the member to keep.
-- Returns how many sessions were live.
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then
    n = n + redis.call('DEL', ARGV[1] .. m)
    redis.call('ZREM', KEYS[1], m)
  end
end
return n
