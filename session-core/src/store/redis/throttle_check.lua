-- Begin a login attempt: refuse it while the name (or address) is locked, else count it.
-- KEYS[1] the attempt counter, a hash: 'b' attempts begun and not released, 'f' failures;
-- ARGV[1] failures that lock, ARGV[2] window (ms), ARGV[3] how long to ask a client to wait
-- when the limit is reached by attempts still being checked (ms).
-- Returns the ms to wait (a lock's remaining time, or ARGV[3] at most while attempts are in
-- flight), or -1 when the attempt may proceed (and was counted).
local limit = tonumber(ARGV[1])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then redis.call('DEL', KEYS[1]) end  -- foreign or old
local begun = tonumber(redis.call('HGET', KEYS[1], 'b') or '0') or 0
local failed = tonumber(redis.call('HGET', KEYS[1], 'f') or '0') or 0
if begun >= limit or failed >= limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    if failed >= limit then return ttl end
    -- Not locked: the limit is taken by attempts still being checked. Counted before the
    -- password is checked, so parallel guesses cannot exceed the limit; a right password
    -- among them clears the count, so the wait is short.
    return math.min(ttl, tonumber(ARGV[3]))
  end
  redis.call('DEL', KEYS[1])                 -- a counter without expiry: start afresh
end
local fresh = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HINCRBY', KEYS[1], 'b', 1)
if fresh then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return -1
