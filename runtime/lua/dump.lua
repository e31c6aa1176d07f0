-- dump.lua: a pretty printer for Lua values (the `Dump` global).
--
-- The output depends only on the value's content: keys are printed in the
-- order of utils.compareKeys, functions/threads/userdata are shown by type
-- without addresses, repeated and cyclic tables are marked. Tables whose
-- metatable has __tostring are printed with it.
--
--   Dump(v)                 -> string
--   Dump(v, {indent = "  ", inline = 72, depth = 40})

local utils = require("utils")

local type, tostring, getmetatable, rawget, mtype =
  type, tostring, getmetatable, rawget, math.type
local format, rep, concat, find, gsub, byte =
  string.format, string.rep, table.concat, string.find, string.gsub, string.byte

local dump = {}

local KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do
  KEYWORDS[w] = true
end

local quote_map = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r',
  ['\t'] = '\\t', ['\0'] = '\\0',
}
local function quote(s)
  return '"' .. gsub(s, '[%c"\\]', function(c)
    return quote_map[c] or format("\\%d", byte(c))
  end) .. '"'
end
dump.quote = quote

local function scalar(v)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "number" then
    if mtype(v) == "integer" then return format("%d", v) end
    return tostring(v)
  end
  if tv == "nil" or tv == "boolean" then return tostring(v) end
  return "<" .. tv .. ">"
end

local function key_text(k)
  if type(k) == "string" and find(k, "^[%a_][%w_]*$") and not KEYWORDS[k] then
    return k
  end
  if type(k) == "table" then return "[<table>]" end
  return "[" .. scalar(k) .. "]"
end

local function custom_tostring(t)
  local mt = getmetatable(t)
  if type(mt) == "table" and rawget(mt, "__tostring") then
    local ok, s = pcall(tostring, t)
    if ok and type(s) == "string" then return s end
  end
  return nil
end

local function render(v, opts, level, path)
  if type(v) ~= "table" then return scalar(v) end
  local custom = custom_tostring(v)
  if custom then return custom end
  if path[v] then return "<cycle>" end
  if level >= opts.depth then return "{...}" end

  local keys = utils.sortedKeys(v)
  local n = #keys
  if n == 0 then return "{}" end

  -- array part: keys 1..m
  local m = 0
  while m < n and keys[m + 1] == m + 1 do m = m + 1 end

  path[v] = true
  local items = {}
  local simple = true
  for i = 1, n do
    local k = keys[i]
    local val = v[k]
    local text = render(val, opts, level + 1, path)
    if type(val) == "table" and text ~= "{}" and not custom_tostring(val) then
      simple = false
    end
    if i <= m then
      items[i] = text
    else
      items[i] = key_text(k) .. " = " .. text
    end
  end
  path[v] = nil

  -- short tables of scalars stay on one line
  if simple then
    local line = "{ " .. concat(items, ", ") .. " }"
    if #line <= opts.inline and not find(line, "\n", 1, true) then return line end
  end
  local pad = rep(opts.indent, level + 1)
  local lines = { "{" }
  for i = 1, n do
    lines[#lines + 1] = pad .. items[i] .. (i < n and "," or "")
  end
  lines[#lines + 1] = rep(opts.indent, level) .. "}"
  return concat(lines, "\n")
end

function dump.dump(v, opts)
  opts = opts or {}
  local o = {
    indent = opts.indent or "  ",
    inline = opts.inline or 72,
    depth = opts.depth or 40,
  }
  return render(v, o, 0, {})
end

return setmetatable(dump, { __call = function(_, v, opts) return dump.dump(v, opts) end })
