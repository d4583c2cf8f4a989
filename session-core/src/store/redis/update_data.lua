-- Merge per-key changes into a session's application data, atomically (SessionStore::update_data).
-- The data part of the record is a JSON object written by serde_json. Only its top level is
-- read here: each member's key and value stay the exact bytes Rust wrote (cjson would turn big
-- integers into floats and empty arrays into objects), and Rust compares keys and values by
-- their serde_json encoding too.
-- KEYS[1] session key.
-- ARGV[1] record format version; ARGV[2] 0-based offset of the user id's length byte;
-- ARGV[3] width of the label's length field; ARGV[4] width of the roles block's length field
-- (record.rs owns these); ARGV[5] the largest data allowed, in bytes;
-- ARGV[6] E, the number of expectations; then E pairs (key as JSON, value as JSON or '' for
-- "absent"); then pairs of changes (key as JSON, value as JSON or '' for "remove").
-- Returns {0}: no session; {-1}: not a record of ours or unreadable data; {1, data}: applied;
-- {2, data}: an expectation failed, nothing changed; {3, size}: the result would be too large.
local v = redis.pcall('GET', KEYS[1])
if not v then return {0} end
if type(v) ~= 'string' then return {-1} end

local version = tonumber(ARGV[1])
local user_len_at = tonumber(ARGV[2]) + 1
local label_w = tonumber(ARGV[3])
local authz_w = tonumber(ARGV[4])
local max_len = tonumber(ARGV[5])

if #v < user_len_at or string.byte(v, 1) ~= version then return {-1} end
local label_at = user_len_at + 1 + string.byte(v, user_len_at)
if #v < label_at + label_w - 1 then return {-1} end
local authz_at = label_at + label_w + struct.unpack('>I' .. label_w, v, label_at)
if #v < authz_at + authz_w - 1 then return {-1} end
local data_at = authz_at + authz_w + struct.unpack('>I' .. authz_w, v, authz_at)
if #v < data_at - 1 then return {-1} end
local head = string.sub(v, 1, data_at - 1)
local d = string.sub(v, data_at)

-- The JSON scanner: each function takes the position of a token's first byte and returns the
-- position of its last (nil: not JSON we wrote). string.find does the byte-by-byte work in C.
local function next_token(i)
  return string.find(d, '[^ \t\r\n]', i)
end
local function string_end(i)
  local j = i + 1
  while true do
    local k = string.find(d, '["\\]', j)
    if not k then return nil end
    if string.byte(d, k) == 34 then return k end
    j = k + 2 -- an escape: skip the escaped byte
  end
end
local function value_end(i)
  local c = string.byte(d, i)
  if c == 34 then return string_end(i) end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local k = string.find(d, '[%[%]{}"]', j)
      if not k then return nil end
      local b = string.byte(d, k)
      if b == 34 then
        k = string_end(k)
        if not k then return nil end
      elseif b == 123 or b == 91 then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then return k end
      end
      j = k + 1
    end
  end
  -- a number, true, false or null: up to the next separator
  local k = string.find(d, '[,}%]%s]', i)
  if not k or k == i then return nil end
  return k - 1
end

-- keys[n], vals[n]: the members in stored order (vals[n] = false: dropped); at[key] = n.
local keys, vals, at, n = {}, {}, {}, 0
if #d > 0 then
  local i = next_token(1)
  if not i or string.byte(d, i) ~= 123 then return {-1} end
  i = next_token(i + 1)
  if not i then return {-1} end
  if string.byte(d, i) ~= 125 then
    while true do
      if string.byte(d, i) ~= 34 then return {-1} end
      local ke = string_end(i)
      if not ke then return {-1} end
      local key = string.sub(d, i, ke)
      i = next_token(ke + 1)
      if not i or string.byte(d, i) ~= 58 then return {-1} end
      i = next_token(i + 1)
      if not i then return {-1} end
      local ve = value_end(i)
      if not ve then return {-1} end
      n = n + 1
      keys[n], vals[n] = key, string.sub(d, i, ve)
      -- a repeated key: the last one counts (as when Rust decodes it)
      if at[key] then vals[at[key]] = false end
      at[key] = n
      i = next_token(ve + 1)
      if not i then return {-1} end
      local c = string.byte(d, i)
      if c == 125 then break end
      if c ~= 44 then return {-1} end
      i = next_token(i + 1)
      if not i then return {-1} end
    end
  end
end

local e = tonumber(ARGV[6])
for x = 0, e - 1 do
  local key, want = ARGV[7 + 2 * x], ARGV[8 + 2 * x]
  local have = at[key] and vals[at[key]] or ''
  if have ~= want then return {2, d} end
end

for x = 7 + 2 * e, #ARGV - 1, 2 do
  local key, value = ARGV[x], ARGV[x + 1]
  if value == '' then
    if at[key] then vals[at[key]] = false end
  elseif at[key] then
    vals[at[key]] = value
  else
    n = n + 1
    keys[n], vals[n] = key, value
    at[key] = n
  end
end

local parts, m = {}, 0
for x = 1, n do
  if vals[x] then
    m = m + 1
    parts[m] = keys[x] .. ':' .. vals[x]
  end
end
local merged = ''
if m > 0 then merged = '{' .. table.concat(parts, ',') .. '}' end
if #merged > max_len then return {3, #merged} end
redis.call('SET', KEYS[1], head .. merged, 'KEEPTTL')
return {1, merged}
