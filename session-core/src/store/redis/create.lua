-- Create a session and index it under its user, enforcing the per-user limit.
-- KEYS[1] session key, KEYS[2] the user's index (sorted set: member = 16-byte key hash,
-- score = created ms), KEYS[3] the user's last role change (if any: the roles block it set).
-- ARGV[1] record header (with the user id), ARGV[2] TTL (ms), ARGV[3] member, ARGV[4] created
-- (ms), ARGV[5] limit (0: none), ARGV[6] prefix of session keys, ARGV[7] absolute timeout (ms),
-- ARGV[8] the roles block the caller read, ARGV[9] the data part.
-- The record is ARGV[1] .. roles block .. ARGV[9]: a role change made while the login was in
-- flight replaces the roles the login read, in the same atomic step as the session's creation.
-- Returns {number of sessions evicted, the role change's block or false}.
local idx, prefix, member = KEYS[2], ARGV[6], ARGV[3]
local limit = tonumber(ARGV[5])
local count = redis.call('ZCARD', idx)
-- The index is read only when it may need it: at the limit (a session may have to go, and
-- ended ones must not count), or, without a limit, every 32nd login (so ended sessions do
-- not pile up). Below the limit a login costs no scan of the user's sessions.
local live = nil
if (limit > 0 and count + 1 > limit) or (limit == 0 and count > 0 and count % 32 == 0) then
  -- The user's sessions, oldest first. One variadic EXISTS tells whether any of them ended;
  -- only then are they checked one by one and the ended ones pruned from the index.
  local members = redis.call('ZRANGE', idx, 0, -1)
  live = members
  local keys = {}
  for i, m in ipairs(members) do keys[i] = prefix .. m end
  if #members > 1000 or redis.call('EXISTS', unpack(keys)) < #members then
    live = {}
    for i, m in ipairs(members) do
      if redis.call('EXISTS', keys[i]) == 0 then
        redis.call('ZREM', idx, m)
      else
        live[#live + 1] = m
      end
    end
  end
end
local changed = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[1], ARGV[1] .. (changed or ARGV[8]) .. ARGV[9], 'PX', ARGV[2])
redis.call('ZADD', idx, ARGV[4], member)
local evicted = 0
if limit > 0 and live then
  -- Evict the oldest live sessions beyond the limit; never the new one (`live` predates it).
  local excess = #live + 1 - limit
  for _, m in ipairs(live) do
    if excess <= 0 then break end
    redis.call('DEL', prefix .. m)
    redis.call('ZREM', idx, m)
    evicted = evicted + 1
    excess = excess - 1
  end
end
-- The index must outlive every session in it; none lives longer than the absolute timeout.
if redis.call('PTTL', idx) < tonumber(ARGV[7]) then redis.call('PEXPIRE', idx, ARGV[7]) end
return {evicted, changed}
