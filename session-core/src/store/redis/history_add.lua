-- Appends one entry to a user's login history (a stream in the hash slot of the user's index)
-- and keeps it within its bounds: at most ARGV[2] entries (exact: the count is a promise), none
-- added more than ARGV[3] ms ago by Redis's clock (the ids are Redis's times), and the whole
-- stream gone ARGV[3] ms after its last entry. Readers also drop entries older than the bound
-- by the time in each entry.
-- KEYS[1] the history stream; ARGV[1] the entry's bytes.
redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[2], '*', 'e', ARGV[1])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
if oldest > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '=', string.format('%d', oldest))
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
