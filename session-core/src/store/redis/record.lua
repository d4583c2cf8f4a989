-- Reading a session record (record.rs is the layout's one source; the positions and widths
-- above are generated from it). Included only in the scripts that need it.

-- The big-endian number of `w` bytes at position `at` of `v`.
local function uint(v, at, w)
  return (struct.unpack('>I' .. w, v, at))
end

-- True for a record of this format, at least as long as its fixed header.
local function is_record(v)
  return type(v) == 'string' and #v >= USER_LEN + USER_LEN_W - 1
    and uint(v, VERSION, VERSION_W) == FORMAT
end

-- The user id of a record (is_record(v) holds).
local function user_of(v)
  local at = USER_LEN + USER_LEN_W
  return string.sub(v, at, at + uint(v, USER_LEN, USER_LEN_W) - 1)
end

-- The number of bytes before the roles block and the block's length (with its own length
-- field), or nil for a truncated record (is_record(v) holds).
local function authz_span(v)
  local at = USER_LEN + USER_LEN_W + uint(v, USER_LEN, USER_LEN_W)   -- the device block's length
  if #v < at + DEVICE_LEN_W - 1 then return nil end
  local head = at + DEVICE_LEN_W - 1 + uint(v, at, DEVICE_LEN_W)
  if #v < head + AUTHZ_LEN_W then return nil end
  local len = AUTHZ_LEN_W + uint(v, head + 1, AUTHZ_LEN_W)
  if #v < head + len then return nil end
  return head, len
end

-- The record `v` with its device block's method set to `m` (a re-authentication by `m`;
-- is_record(v) holds), or nil for a truncated record. A device block of defaults is empty: it
-- becomes no flags, no network, the method.
local function with_method(v, m)
  local at = USER_LEN + USER_LEN_W + uint(v, USER_LEN, USER_LEN_W)   -- the device block's length
  if #v < at + DEVICE_LEN_W - 1 then return nil end
  local len = uint(v, at, DEVICE_LEN_W)
  local from = at + DEVICE_LEN_W                                      -- the block's first byte
  local dev = string.sub(v, from, from + len - 1)
  if #dev ~= len then return nil end
  if len == 0 then dev = string.char(0, 0, 0) end
  local p = NET_TAG + 1                                               -- the method's length byte
  local tag = string.byte(dev, NET_TAG)
  if tag == 4 then p = p + NET_V4_W elseif tag == 6 then p = p + NET_V6_W end
  local old = string.byte(dev, p)
  if not old then return nil end
  dev = string.sub(dev, 1, p - 1) .. string.char(#m) .. m .. string.sub(dev, p + 1 + old)
  return string.sub(v, 1, at - 1) .. struct.pack('>I' .. DEVICE_LEN_W, #dev) .. dev
    .. string.sub(v, from + len)
end

-- Ends the session under key `k`, whose value `v` was just read (false: none): deletes it and,
-- for a record of ours, keeps `reason` (its one-byte code) under `ended` until the session's
-- deadline, for a client that still holds the token to learn why. True when there was one.
local function end_session(k, v, ended, reason)
  if not v then return false end
  redis.call('DEL', k)
  if is_record(v) then
    redis.call('SET', ended, reason, 'PXAT', uint(v, DEADLINE, DEADLINE_W))
  end
  return true
end

