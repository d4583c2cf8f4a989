-- Adds one entry to a user's login history: a list, newest first, in the hash slot of the
-- user's index (one `LPUSH`ed string per entry costs about half of a stream entry). It keeps
-- at most ARGV[2] entries (exact: the count is a promise) and is gone ARGV[3] ms after its last
-- entry; readers drop entries older than that bound by the time in each entry.
-- KEYS[1] the history; ARGV[1] the entry's bytes.
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
