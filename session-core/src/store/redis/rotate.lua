-- Move a session to a new key (a new token): the old key stops working at once. With an auth
-- time (step-up re-authentication), the record's auth time and method are set in the same
-- atomic step.
-- KEYS[1] old key, KEYS[2] new key; ARGV[1] prefix of index keys, ARGV[2] old member,
-- ARGV[3] new member, ARGV[4] now (ms), ARGV[5] the new auth time (ms), or '' to keep it and
-- the method, ARGV[6] the method of the re-authentication.
-- Returns the record as moved, 0 when there is no session, -1 when the record is not ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
-- a value of another type (WRONGTYPE), foreign or truncated bytes: not a session of ours
if not is_record(v) then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
if ARGV[5] ~= '' then
  v = string.sub(v, 1, AUTH_TIME - 1) .. struct.pack('>I' .. AUTH_TIME_W, tonumber(ARGV[5]))
    .. string.sub(v, AUTH_TIME + AUTH_TIME_W)
  v = with_method(v, ARGV[6])
  if not v then return -1 end
end
redis.call('SET', KEYS[2], v, 'PX', ttl)
redis.call('DEL', KEYS[1])
if user_of(v) == '' then return v end                      -- anonymous: in no index
local idx = ARGV[1] .. user_of(v)
local score = redis.call('ZSCORE', idx, ARGV[2]) or uint(v, CREATED, CREATED_W)
redis.call('ZREM', idx, ARGV[2])
redis.call('ZADD', idx, score, ARGV[3])
local remaining = uint(v, DEADLINE, DEADLINE_W) - tonumber(ARGV[4])
if redis.call('PTTL', idx) < remaining then redis.call('PEXPIRE', idx, remaining) end
return v
