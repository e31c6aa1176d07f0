-- json.lua: JSON encoder/decoder for vmnode's AO process library.
--
-- Encoding is deterministic: object keys are sorted (byte order), so the
-- same value always encodes to the same string whatever order `pairs`
-- visits the table in.
--
-- Mapping:
--   nil, json.null        -> null
--   boolean               -> true / false
--   integer               -> decimal digits
--   float                 -> shortest of %.14g / %.17g that reads back exactly
--                            (NaN and infinities are an error)
--   string                -> "..." (", \ and control bytes escaped; other
--                            bytes copied as they are)
--   table                 -> array when its keys are exactly 1..n (n >= 1),
--                            object otherwise (number keys become strings);
--                            an empty table is [] unless marked as an object
--                            with json.object(t); json.array(t) forces [].
-- Decoding gives Lua tables; arrays come back marked with json.array, so
-- an empty array re-encodes as [] and an empty object as {}. null decodes to
-- nil (inside arrays this leaves a hole) unless decode(s, {null = json.null}).

local json = { _version = "vmnode-1" }

local type, tostring, tonumber = type, tostring, tonumber
local byte, char, sub, find, format, concat =
  string.byte, string.char, string.sub, string.find, string.format, table.concat
local tointeger, mtype = math.tointeger, math.type
local getmetatable, setmetatable, rawget, next =
  getmetatable, setmetatable, rawget, next
local error, pcall = error, pcall
local sort = table.sort

local MAX_DEPTH = 200

-- Sentinel that encodes as null (useful inside arrays and objects).
json.null = setmetatable({}, { __tostring = function() return "null" end,
                               __name = "json.null" })

local ARRAY_MT = { __jsontype = "array" }
local OBJECT_MT = { __jsontype = "object" }

-- Mark a table as a JSON array (even when empty). Returns the table.
function json.array(t)
  t = t or {}
  if getmetatable(t) == nil then setmetatable(t, ARRAY_MT) end
  return t
end

-- Mark a table as a JSON object (even when empty). Returns the table.
function json.object(t)
  t = t or {}
  if getmetatable(t) == nil then setmetatable(t, OBJECT_MT) end
  return t
end

-- What a table encodes as: "array" (with its length) or "object".
local function kind_of(t)
  local mt = getmetatable(t)
  local forced = mt and type(mt) == "table" and rawget(mt, "__jsontype")
  local n = 0
  local max = 0
  for k in next, t do
    n = n + 1
    if mtype(k) == "integer" and k > 0 then
      if k > max then max = k end
    else
      max = -1
    end
  end
  if n == 0 then
    if forced == "object" then return "object", 0 end
    return "array", 0
  end
  if forced ~= "object" and max == n then return "array", n end
  return "object", n
end

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end
json.quote = encode_string

local function encode_number(x)
  if mtype(x) == "integer" then return format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then
    error("json.encode: cannot encode number " .. tostring(x), 0)
  end
  local i = tointeger(x)
  if i and i > -2^53 and i < 2^53 then return format("%d", i) end
  local s = format("%.14g", x)
  if tonumber(s) ~= x then s = format("%.17g", x) end
  return s
end

-- Key ordering for objects: keys are strings by the time we sort.
local function encode_value(v, out, depth, seen, opts)
  local tv = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    if seen[v] then error("json.encode: circular reference", 0) end
    if depth > MAX_DEPTH then error("json.encode: nesting too deep", 0) end
    local mt = getmetatable(v)
    if mt and type(mt) == "table" and rawget(mt, "__tojson") then
      out[#out + 1] = rawget(mt, "__tojson")(v)
      return
    end
    seen[v] = true
    local kind, n = kind_of(v)
    if kind == "array" then
      if n == 0 then
        out[#out + 1] = "[]"
      else
        out[#out + 1] = "["
        for i = 1, n do
          if i > 1 then out[#out + 1] = "," end
          encode_value(v[i], out, depth + 1, seen, opts)
        end
        out[#out + 1] = "]"
      end
    else
      local keys, map = {}, {}
      for k, val in next, v do
        local tk = type(k)
        local sk
        if tk == "string" then
          sk = k
        elseif tk == "number" then
          sk = encode_number(k)
        else
          error("json.encode: object key of type " .. tk, 0)
        end
        if map[sk] ~= nil then
          error("json.encode: duplicate key " .. encode_string(sk), 0)
        end
        -- values that JSON cannot hold are skipped when asked to
        local tval = type(val)
        if not (opts.skip_functions and (tval == "function" or tval == "thread"
                                          or tval == "userdata")) then
          map[sk] = { val }
          keys[#keys + 1] = sk
        end
      end
      sort(keys)
      out[#out + 1] = "{"
      for i = 1, #keys do
        if i > 1 then out[#out + 1] = "," end
        local k = keys[i]
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        encode_value(map[k][1], out, depth + 1, seen, opts)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  elseif opts.skip_functions then
    out[#out + 1] = "null"
  else
    error("json.encode: cannot encode a " .. tv, 0)
  end
end

-- json.encode(value[, opts]) -> string
--   opts.skip_functions: leave out object fields holding functions, threads
--   or userdata (and encode such array items as null) instead of failing.
function json.encode(v, opts)
  local out = {}
  encode_value(v, out, 0, {}, opts or {})
  return concat(out)
end

---------------------------------------------------------------------------
-- Decoder

local function decode_error(s, pos, what)
  local line, col = 1, 1
  for i = 1, pos - 1 do
    if byte(s, i) == 10 then line = line + 1; col = 1 else col = col + 1 end
  end
  error(format("json.decode: %s at line %d column %d", what, line, col), 0)
end

local function skip_ws(s, pos)
  local _, e = find(s, "^[ \t\r\n]*", pos)
  return e + 1
end

local function utf8_encode(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then
    return char(0xC0 | (cp >> 6), 0x80 | (cp & 0x3F))
  end
  if cp < 0x10000 then
    return char(0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
  end
  return char(0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F),
              0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
end

local simple_unescape = {
  ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f',
  n = '\n', r = '\r', t = '\t',
}

local function decode_string(s, pos)
  -- pos is at the opening quote
  local parts = {}
  local i = pos + 1
  while true do
    local a, b = find(s, '^[^"\\%c]+', i)
    if a then
      parts[#parts + 1] = sub(s, a, b)
      i = b + 1
    end
    local c = sub(s, i, i)
    if c == '"' then
      return concat(parts), i + 1
    elseif c == "\\" then
      local e = sub(s, i + 1, i + 1)
      if simple_unescape[e] then
        parts[#parts + 1] = simple_unescape[e]
        i = i + 2
      elseif e == "u" then
        local hex = sub(s, i + 2, i + 5)
        if not find(hex, "^%x%x%x%x$") then decode_error(s, i, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        i = i + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local hex2 = sub(s, i + 2, i + 5)
          if sub(s, i, i + 1) == "\\u" and find(hex2, "^%x%x%x%x$") then
            local lo = tonumber(hex2, 16)
            if lo >= 0xDC00 and lo <= 0xDFFF then
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
              i = i + 6
            end
          end
        end
        parts[#parts + 1] = utf8_encode(cp)
      else
        decode_error(s, i, "bad escape")
      end
    elseif c == "" then
      decode_error(s, i, "unterminated string")
    else
      decode_error(s, i, "control character in string")
    end
  end
end

local decode_value

local function decode_array(s, pos, depth, opts)
  local arr = setmetatable({}, ARRAY_MT)
  local n = 0
  pos = skip_ws(s, pos + 1)
  if sub(s, pos, pos) == "]" then return arr, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth + 1, opts)
    n = n + 1
    if v == nil then v = json.null end  -- keep the array's length
    arr[n] = v
    pos = skip_ws(s, pos)
    local c = sub(s, pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then decode_error(s, pos, "expected ',' or ']'") end
    pos = skip_ws(s, pos + 1)
  end
end

local function decode_object(s, pos, depth, opts)
  local obj = setmetatable({}, OBJECT_MT)
  pos = skip_ws(s, pos + 1)
  if sub(s, pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if sub(s, pos, pos) ~= '"' then decode_error(s, pos, "expected a string key") end
    local k
    k, pos = decode_string(s, pos)
    pos = skip_ws(s, pos)
    if sub(s, pos, pos) ~= ":" then decode_error(s, pos, "expected ':'") end
    pos = skip_ws(s, pos + 1)
    local v
    v, pos = decode_value(s, pos, depth + 1, opts)
    obj[k] = v
    pos = skip_ws(s, pos)
    local c = sub(s, pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then decode_error(s, pos, "expected ',' or '}'") end
    pos = skip_ws(s, pos + 1)
  end
end

decode_value = function(s, pos, depth, opts)
  if depth > MAX_DEPTH then decode_error(s, pos, "nesting too deep") end
  local c = sub(s, pos, pos)
  if c == "{" then return decode_object(s, pos, depth, opts) end
  if c == "[" then return decode_array(s, pos, depth, opts) end
  if c == '"' then return decode_string(s, pos) end
  if c == "t" and sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
  if c == "f" and sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
  if c == "n" and sub(s, pos, pos + 3) == "null" then return opts.null, pos + 4 end
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if a then
    local text = sub(s, a, b)
    if not find(text, "^-?0%d") and
       (find(text, "^-?%d+$") or find(text, "^-?%d+%.%d+$") or
        find(text, "^-?%d+[eE][-+]?%d+$") or find(text, "^-?%d+%.%d+[eE][-+]?%d+$")) then
      local n
      if find(text, "^-?%d+$") then
        n = tointeger(tonumber(text))  -- nil when it overflows an integer
        if n == nil then n = tonumber(text .. ".0") end
      else
        n = tonumber(text)
      end
      if n then return n, b + 1 end
    end
    decode_error(s, pos, "bad number")
  end
  if c == "" then decode_error(s, pos, "unexpected end of input") end
  decode_error(s, pos, "unexpected character " .. format("%q", c))
end

-- json.decode(string[, opts]) -> value; raises an error on malformed input.
--   opts.null: the value that null decodes to (default: nil, but json.null
--              inside arrays).
function json.decode(s, opts)
  if type(s) ~= "string" then
    error("json.decode: expected a string, got " .. type(s), 0)
  end
  opts = opts or {}
  local pos = skip_ws(s, 1)
  local v
  v, pos = decode_value(s, pos, 0, opts)
  pos = skip_ws(s, pos)
  if pos <= #s then decode_error(s, pos, "trailing characters") end
  return v
end

-- json.trydecode(string) -> value | nil, error
function json.trydecode(s, opts)
  local ok, v = pcall(json.decode, s, opts)
  if ok then return v end
  return nil, v
end

return json
