-- Create a session and index it under its user, enforcing the per-user limit.
-- KEYS[1] session key, KEYS[2] the user's index (sorted set: member = 32-byte key hash,
-- score = created ms).
-- ARGV[1] record, ARGV[2] TTL (ms), ARGV[3] member, ARGV[4] created (ms), ARGV[5] limit (0: none),
-- ARGV[6] prefix of session keys, ARGV[7] absolute timeout (ms).
-- Returns the number of sessions evicted.
local idx, prefix, member = KEYS[2], ARGV[6], ARGV[3]
-- Prune entries whose session has ended, so they neither count against the limit nor pile up.
for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
  if redis.call('EXISTS', prefix .. m) == 0 then redis.call('ZREM', idx, m) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', idx, ARGV[4], member)
local evicted = 0
local limit = tonumber(ARGV[5])
if limit > 0 then
  local excess = redis.call('ZCARD', idx) - limit
  -- Oldest first; never the session just created (another server's clock may run ahead).
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if excess <= 0 then break end
    if m ~= member then
      redis.call('DEL', prefix .. m)
      redis.call('ZREM', idx, m)
      evicted = evicted + 1
      excess = excess - 1
    end
  end
end
-- The index must outlive every session in it; none lives longer than the absolute timeout.
if redis.call('PTTL', idx) < tonumber(ARGV[7]) then redis.call('PEXPIRE', idx, ARGV[7]) end
return evicted
