-- Reading a session record (record.rs is the layout's one source; the positions above are
-- generated from it). Included only in the scripts that need it.

-- True for a record of this format, at least as long as its fixed header.
local function is_record(v)
  return type(v) == 'string' and #v >= USER_LEN and string.byte(v, 1) == FORMAT
end

-- The user id of a record (is_record(v) holds).
local function user_of(v)
  local n = string.byte(v, USER_LEN)
  return string.sub(v, USER_LEN + 1, USER_LEN + n)
end

-- The number of bytes before the roles block and the block's length (with its own 2-byte
-- length), or nil for a truncated record (is_record(v) holds).
local function authz_span(v)
  local at = USER_LEN + string.byte(v, USER_LEN) + 1      -- the label's 2-byte length
  if #v < at + 1 then return nil end
  local head = at + 1 + struct.unpack('>I2', v, at)
  if #v < head + 2 then return nil end
  local len = 2 + struct.unpack('>I2', v, head + 1)
  if #v < head + len then return nil end
  return head, len
end

