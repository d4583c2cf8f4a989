-- Replace a session's device block if it is still the one the caller read (a DBSC
-- registration or refresh: compare and set), keeping the rest of the record and its TTL.
-- KEYS[1] session key; ARGV[1] the device block read; ARGV[2] the new one.
-- Returns 1 when replaced, 0 when there is no session or its device block changed meanwhile,
-- -1 when the value is not a record of ours.
local v = redis.pcall('GET', KEYS[1])
if not v then return 0 end
if not is_record(v) then return -1 end
local at = USER_LEN + USER_LEN_W + uint(v, USER_LEN, USER_LEN_W)   -- the device block's length
if #v < at + DEVICE_LEN_W - 1 then return -1 end
local len = uint(v, at, DEVICE_LEN_W)
local from = at + DEVICE_LEN_W                                      -- the block's first byte
if string.sub(v, from, from + len - 1) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], string.sub(v, 1, at - 1) .. struct.pack('>I' .. DEVICE_LEN_W, #ARGV[2])
  .. ARGV[2] .. string.sub(v, from + len), 'KEEPTTL')
return 1
