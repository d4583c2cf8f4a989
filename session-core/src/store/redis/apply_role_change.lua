-- Give a just-created session the roles of a role change that was made while its login was in
-- flight (one server / Sentinel: atomic with set_authz.lua, so no later change is undone).
-- Nobody holds the session's token yet, so only role changes can have touched it: it is
-- written again from its parts.
-- KEYS[1] session key, KEYS[2] the user's last role change; ARGV[1] the record's header (with
-- the user id), ARGV[2] the roles block it was written with, ARGV[3] its data part.
-- Returns the block the session now has, or false when it is unchanged.
local changed = redis.call('GET', KEYS[2])
if not changed or changed == ARGV[2] then return false end
redis.call('SET', KEYS[1], ARGV[1] .. changed .. ARGV[3], 'XX', 'KEEPTTL')
return changed
