-- Keep a user's index within the per-user limit after a login added `ARGV[3]` to it: prune
-- members whose session key is gone, then end the oldest live sessions beyond the limit (never
-- the new one), each keeping the reason `ARGV[5]` under `ARGV[4] .. member`. KEYS[1] the
-- user's index; ARGV[1] prefix of session keys, ARGV[2] limit (0: none, prune only), ARGV[3]
-- the new member, ARGV[4] prefix of ended-reason keys, ARGV[5] the reason's code.
-- Returns the number of sessions ended.
local idx, prefix, member = KEYS[1], ARGV[1], ARGV[3]
local limit = tonumber(ARGV[2])
local members = redis.call('ZRANGE', idx, 0, -1)
-- Emptied since the login indexed its session (the user's sessions were all ended): nothing
-- to do, and EXISTS takes at least one key.
if #members == 0 then return 0 end
local keys = {}
for i, m in ipairs(members) do keys[i] = prefix .. m end
local live = members
-- One variadic EXISTS tells whether any of them ended; only then check them one by one.
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
local evicted = 0
if limit > 0 then
  local excess = #live - limit
  for _, m in ipairs(live) do
    if excess <= 0 then break end
    if m ~= member then
      local k = prefix .. m
      end_session(k, redis.pcall('GET', k), ARGV[4] .. m, ARGV[5])
      redis.call('ZREM', idx, m)
      evicted = evicted + 1
      excess = excess - 1
    end
  end
end
return evicted
