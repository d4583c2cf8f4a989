-- Create a login session and index it (one server / Sentinel), atomically with the checks of
-- what happened while its login was in flight:
-- - the user's sessions were ended (a password change, "sign out everywhere") since the login
--   read its epoch: nothing is written, the login gets no session;
-- - the user's roles were changed (set_authz.lua recorded the new roles block): the session
--   gets those roles instead of the ones the login read.
-- KEYS[1] session key, KEYS[2] the user's index, KEYS[3] the user's last role change,
-- KEYS[4] the user's login epoch.
-- ARGV[1] the record's header, ARGV[2] its roles block, ARGV[3] its data part, ARGV[4] its
-- TTL (ms), ARGV[5] index score (created ms), ARGV[6] index member, ARGV[7] index TTL (ms),
-- ARGV[8] the login's epoch ('' when the login read none: not checked; absent key = '0').
-- Returns {members in the index, the roles block applied or false}, or false for a
-- superseded login.
if ARGV[8] ~= '' and (redis.call('GET', KEYS[4]) or '0') ~= ARGV[8] then return false end
local changed = redis.call('GET', KEYS[3])
if changed == ARGV[2] then changed = false end
redis.call('SET', KEYS[1], ARGV[1] .. (changed or ARGV[2]) .. ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
-- Every session in the index ends before now + the absolute timeout.
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return {redis.call('ZCARD', KEYS[2]), changed}
