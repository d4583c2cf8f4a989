-- Merge per-key changes into a session's application data, atomically (SessionStore::update_data).
-- The data part of the record is a JSON object written by serde_json. Only its top level is
-- read here: each member's key and value stay the exact bytes Rust wrote (cjson would turn big
-- integers into floats and empty arrays into objects), and Rust compares keys and values by
-- their serde_json encoding too.
-- KEYS[1] session key.
-- ARGV[1] E, the number of expectations; then E pairs (key as JSON, value as JSON or '' for
-- "absent"); then pairs of changes (key as JSON, value as JSON or '' for "remove").
-- The record's layout and the largest data allowed (MAX_DATA) come from the prelude.
-- Returns {0}: no session; {-1}: not a record of ours or unreadable data; {1, data}: applied;
-- {2, data}: an expectation failed, nothing changed; {3, size}: the result would be too large.
local v = redis.pcall('GET', KEYS[1])
if not v then return {0} end
if not is_record(v) then return {-1} end
local before_roles, roles_len = authz_span(v)
if not before_roles then return {-1} end
local data_at = before_roles + roles_len + 1
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
    -- a plain search (memchr), far faster than a pattern on long strings
    local k = string.find(d, '"', j, true)
    if not k then return nil end
    -- the quote is escaped when an odd number of backslashes precede it
    local b = k - 1
    while string.byte(d, b) == 92 do b = b - 1 end
    if (k - 1 - b) % 2 == 0 then return k end
    j = k + 1
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

-- Member n: its key (as JSON) and where it and its value lie in d (ks[n]: the key's opening
-- quote; vs[n]..ve[n]: the value; ks[n] = false: dropped). Values are not copied out:
-- unchanged members are copied back as runs of d.
local keys, ks, vs, ve, at, n = {}, {}, {}, {}, {}, 0
-- serde_json writes no whitespace: look at the byte first, and search only if it is some.
local function skip_ws(i)
  local b = string.byte(d, i)
  if b == 32 or b == 9 or b == 10 or b == 13 then return next_token(i) end
  return b and i
end
local function at_byte(i, b)
  i = skip_ws(i)
  if i and string.byte(d, i) == b then return i end
  return nil
end
if #d > 0 then
  local i = at_byte(1, 123)
  if not i then return {-1} end
  local first = next_token(i + 1)
  if not first then return {-1} end
  if string.byte(d, first) == 125 then
    if next_token(first + 1) then return {-1} end
  else
    i = first
    while true do
      i = at_byte(i, 34)
      if not i then return {-1} end
      local k_end = string_end(i)
      if not k_end then return {-1} end
      local key = string.sub(d, i, k_end)
      local colon = at_byte(k_end + 1, 58)
      if not colon then return {-1} end
      local v_start = skip_ws(colon + 1)
      if not v_start then return {-1} end
      local v_end = value_end(v_start)
      if not v_end then return {-1} end
      n = n + 1
      keys[n], ks[n], vs[n], ve[n] = key, i, v_start, v_end
      -- a repeated key: the last one counts (as when Rust decodes it)
      if at[key] then ks[at[key]] = false end
      at[key] = n
      i = skip_ws(v_end + 1)
      if not i then return {-1} end
      local c = string.byte(d, i)
      if c == 125 then
        if next_token(i + 1) then return {-1} end -- bytes after the object
        break
      end
      if c ~= 44 then return {-1} end
      i = i + 1
    end
  end
end

local e, first = tonumber(ARGV[1]), 2      -- the pairs start at ARGV[first]
local function current(key)
  local m = at[key]
  if not m or not ks[m] then return '' end
  return string.sub(d, vs[m], ve[m])
end
for x = first, first + e * 2 - 1, 2 do
  if current(ARGV[x]) ~= ARGV[x + 1] then return {2, d} end
end

-- new[m]: the new value of member m ('' = removed); appended members after n.
local new, extra, extra_n = {}, {}, 0
for x = first + e * 2, #ARGV - 1, 2 do
  local key, value = ARGV[x], ARGV[x + 1]
  local m = at[key]
  if m and ks[m] then
    new[m] = value
  elseif value ~= '' then
    if extra[key] == nil then
      extra_n = extra_n + 1
      extra[extra_n] = key
    end
    extra[key] = value
  end
end

-- Runs of unchanged members are copied as they are stored (with the commas between them).
local parts, p, run = {}, 0, nil
local function flush(last)
  if run then
    p = p + 1
    parts[p] = string.sub(d, ks[run], ve[last])
    run = nil
  end
end
local last_kept = nil
for m = 1, n do
  if ks[m] and new[m] == nil then
    if run and last_kept ~= m - 1 then flush(last_kept) end
    if not run then run = m end
    last_kept = m
  else
    flush(last_kept)
    if ks[m] and new[m] ~= '' then
      p = p + 1
      parts[p] = keys[m] .. ':' .. new[m]
    end
  end
end
flush(last_kept)
for x = 1, extra_n do
  local key = extra[x]
  if extra[key] ~= '' then
    p = p + 1
    parts[p] = key .. ':' .. extra[key]
  end
end
local merged = ''
if p > 0 then merged = '{' .. table.concat(parts, ',') .. '}' end
if #merged > MAX_DATA then return {3, #merged} end
redis.call('SET', KEYS[1], head .. merged, 'KEEPTTL')
return {1, merged}
