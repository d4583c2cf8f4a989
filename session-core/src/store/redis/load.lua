-- Load and touch, in one round trip.
-- KEYS[1] session key; ARGV[1] now (ms), ARGV[2] idle timeout (ms), ARGV[3] touch interval (ms).
-- Returns the record, or false when there is no live session.
local v = redis.pcall('GET', KEYS[1])
if not v then return false end
-- a value of another type (WRONGTYPE): foreign data, not a session
if type(v) ~= 'string' then return '' end
-- Foreign or corrupt bytes: hand them back untouched; the client logs them and sees no session.
if #v < USER_LEN or struct.unpack('>I' .. VERSION_W, v, VERSION) ~= FORMAT then return v end
local now = tonumber(ARGV[1])
local remaining = struct.unpack('>I' .. DEADLINE_W, v, DEADLINE) - now   -- until the deadline
if remaining <= 0 then
  redis.call('DEL', KEYS[1])                            -- ended; the index is pruned lazily
  return false
end
-- The TTL is the smaller of the idle timeout and the time left until the absolute deadline.
local ttl = tonumber(ARGV[2])
if remaining < ttl then ttl = remaining end
local time = '>I' .. LAST_SEEN_W
if now - struct.unpack(time, v, LAST_SEEN) >= tonumber(ARGV[3]) then
  -- last-seen moved by more than the touch interval: rewrite it with the expiry
  v = string.sub(v, 1, LAST_SEEN - 1) .. struct.pack(time, now)
    .. string.sub(v, LAST_SEEN + LAST_SEEN_W)
  redis.call('SET', KEYS[1], v, 'PX', ttl)
else
  redis.call('PEXPIRE', KEYS[1], ttl)                   -- only slide the expiry
end
return v
