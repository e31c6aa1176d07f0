-- utils.lua: small helpers shared by the library and offered to process code
-- as the `Utils` global.
--
-- Everything here that walks a table by key does it in a fixed order
-- (utils.sortedKeys), never in `pairs` order, so results do not depend on
-- the string-hash seed or on table addresses.

local utils = {}

local type, tostring, select, next, ipairs =
  type, tostring, select, next, ipairs
local sort, concat, unpack = table.sort, table.concat, table.unpack
local find, mtype = string.find, math.type
local pcall, error = pcall, error

---------------------------------------------------------------------------
-- Deterministic key order

local rank_of = { number = 1, string = 2, boolean = 3 }

-- A content-based rendering for keys that have no natural order (tables,
-- functions...). Used only to break ties; two different tables with the
-- same content keep an arbitrary relative order, but such keys are rare.
local function fallback_repr(v)
  local tv = type(v)
  if tv == "table" then
    local parts = {}
    local ks = utils.sortedKeys(v)
    for i = 1, #ks do
      local k = ks[i]
      local vv = v[k]
      parts[#parts + 1] = tostring(type(k) == "table" and "{}" or k) .. "=" ..
        tostring(type(vv) == "table" and "{}" or
                 (type(vv) == "string" or type(vv) == "number" or
                  type(vv) == "boolean") and vv or type(vv))
    end
    return "table{" .. concat(parts, ",") .. "}"
  end
  return tv
end

-- Comparison usable with table.sort on keys of any types:
-- numbers (by value) < strings (byte order in the C locale) < booleans
-- (false < true) < everything else (by type name, then by content).
function utils.compareKeys(a, b)
  local ta, tb = type(a), type(b)
  local ra, rb = rank_of[ta] or 4, rank_of[tb] or 4
  if ra ~= rb then return ra < rb end
  if ra == 1 or ra == 2 then return a < b end
  if ra == 3 then return (not a) and b end
  if ta ~= tb then return ta < tb end
  if ta == "table" then return fallback_repr(a) < fallback_repr(b) end
  return false
end

-- The keys of t in the order of utils.compareKeys.
function utils.sortedKeys(t)
  local keys = {}
  local n = 0
  for k in next, t do
    n = n + 1
    keys[n] = k
  end
  if n > 1 then sort(keys, utils.compareKeys) end
  return keys
end

-- Iterate t in sorted key order: for k, v in utils.spairs(t) do ... end
function utils.spairs(t)
  local keys = utils.sortedKeys(t)
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, t[k] end
  end
end

-- true when t has exactly the keys 1..n (and n >= 1) or is empty.
function utils.isArray(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for k in next, t do
    if mtype(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

---------------------------------------------------------------------------
-- Functional helpers (array oriented; the data argument comes last so they
-- can be curried: utils.map(fn)(list) works as well as utils.map(fn, list)).

local function curry(fn, arity)
  arity = arity or 2
  local function collect(args, n)
    return function(...)
      local all = { unpack(args, 1, n) }
      local m = select("#", ...)
      for i = 1, m do all[n + i] = (select(i, ...)) end
      local total = n + m
      if total >= arity then return fn(unpack(all, 1, total)) end
      return collect(all, total)
    end
  end
  return collect({}, 0)
end
utils.curry = curry

utils.map = curry(function(fn, list)
  local out = {}
  for i, v in ipairs(list) do out[i] = fn(v, i) end
  return out
end, 2)

utils.filter = curry(function(fn, list)
  local out = {}
  for i, v in ipairs(list) do
    if fn(v, i) then out[#out + 1] = v end
  end
  return out
end, 2)

utils.reduce = curry(function(fn, initial, list)
  local acc = initial
  for i, v in ipairs(list) do acc = fn(acc, v, i) end
  return acc
end, 3)

utils.find = curry(function(fn, list)
  for i, v in ipairs(list) do
    if fn(v, i) then return v end
  end
  return nil
end, 2)

utils.includes = curry(function(value, list)
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end, 2)

utils.concat = curry(function(a, b)
  local out = {}
  for _, v in ipairs(a) do out[#out + 1] = v end
  for _, v in ipairs(b) do out[#out + 1] = v end
  return out
end, 2)

utils.reverse = function(list)
  local out = {}
  local n = #list
  for i = n, 1, -1 do out[#out + 1] = list[i] end
  return out
end

utils.prop = curry(function(name, t) return t[name] end, 2)

utils.propEq = curry(function(name, value, t) return t[name] == value end, 3)

-- compose(f, g, h)(x) == f(g(h(x)))
utils.compose = function(...)
  local fns = { ... }
  local n = select("#", ...)
  return function(...)
    local results = { ... }
    local count = select("#", ...)
    for i = n, 1, -1 do
      results = { fns[i](unpack(results, 1, count)) }
      count = #results
    end
    return unpack(results, 1, count)
  end
end

-- Keys and values of a table, in sorted key order.
utils.keys = function(t) return utils.sortedKeys(t) end
utils.values = function(t)
  local out = {}
  local ks = utils.sortedKeys(t)
  for i = 1, #ks do out[i] = t[ks[i]] end
  return out
end

-- Index of the first element of list whose field `name` equals value.
function utils.indexOf(list, name, value)
  for i, v in ipairs(list) do
    if type(v) == "table" and v[name] == value then return i end
  end
  return nil
end

---------------------------------------------------------------------------
-- Tags

-- Value of the first tag called `name` in an array of {name=, value=}
-- (or in a name -> value map).
function utils.tagValue(tags, name)
  if type(tags) ~= "table" then return nil end
  if tags[1] ~= nil or next(tags) == nil then
    for _, tag in ipairs(tags) do
      if type(tag) == "table" and tag.name == name then return tag.value end
    end
    return nil
  end
  local v = tags[name]
  if type(v) == "table" then return nil end
  return v
end

---------------------------------------------------------------------------
-- Pattern matching used by Handlers

-- "-" alone is not enough to make a Lua pattern: process ids contain it.
local MAGIC = "[%^%$%(%)%%%.%[%]%*%+%?]"

-- Does one message field value match a pattern?
--   '_'        anything (even a missing field)
--   function   called as fn(value, msg); truthy means a match
--   string     exact match, or a Lua pattern when it holds magic characters
--              (^$()%.[]*+?; a "-" alone does not count, ids contain it);
--              a malformed Lua pattern matches nothing
--   table      a list of such patterns: any of them matches
function utils.matchesPattern(pattern, value, msg)
  if pattern == "_" then return true end
  local tp = type(pattern)
  if tp == "function" then
    return pattern(value, msg) and true or false
  end
  if value == nil then return false end
  if tp == "string" then
    local tv = type(value)
    if tv == "number" or tv == "boolean" then value = tostring(value)
    elseif tv ~= "string" then return false end
    if value == pattern then return true end
    if find(pattern, MAGIC) then
      local ok, found = pcall(find, value, pattern)
      return ok and found ~= nil
    end
    return false
  end
  if tp == "number" or tp == "boolean" then
    return value == pattern or tostring(value) == tostring(pattern)
  end
  if tp == "table" then
    for _, sub in ipairs(pattern) do
      if utils.matchesPattern(sub, value, msg) then return true end
    end
    return false
  end
  return false
end

-- Does a message match a spec?
--   string    msg.Action == spec
--   function  spec(msg) (its own result is returned, for the handler
--             continue/break protocol)
--   table     every key of the spec matches the message field of that name
--             (keys checked in sorted order)
function utils.matchesSpec(msg, spec)
  local ts = type(spec)
  if ts == "function" then return spec(msg) end
  if ts == "string" then return msg.Action == spec end
  if ts == "table" then
    local ks = utils.sortedKeys(spec)
    for i = 1, #ks do
      local k = ks[i]
      if not utils.matchesPattern(spec[k], msg[k], msg) then return false end
    end
    return true
  end
  return false
end

return utils
