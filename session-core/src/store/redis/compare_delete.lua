-- Delete a key only if it still holds ARGV[1] (Redis Cluster rotation, last step).
-- KEYS[1] key. Returns 1 when deleted, 0 when the key is gone, or its current value when it
-- changed meanwhile (the caller copies that value and tries again).
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
if v == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if type(v) ~= 'string' then return 0 end
return v
