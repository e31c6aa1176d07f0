-- process.lua: entry point of vmnode's AO process library.
--
--   local process = require("process")
--   local result = process.handle(msg, env)
--
-- Loading this module installs the process globals (Handlers, Inbox, Send,
-- print, ...); it must be loaded once per Lua state, before the first
-- message. All state lives in the Lua heap (globals and upvalues of these
-- modules), so a checkpoint of the heap is a checkpoint of the process.
-- See docs/lua-runtime.md for the contract with the C host.

local json = require("json")
local utils = require("utils")
local dump = require("dump")
local handlers = require("handlers")
local ao = require("ao")
local eval = require("eval")

local type, tostring, tonumber, select, ipairs, pcall, error, next =
  type, tostring, tonumber, select, ipairs, pcall, error, next
local setmetatable, rawget = setmetatable, rawget
local concat, tmove = table.concat, table.move
local format, sub, find = string.format, string.sub, string.find
local tointeger, mtype = math.tointeger, math.type
local randomseed = math.randomseed

local process = { _version = "vmnode-1", booted = false }

-- Seed math.random from each message (process._seed). A host that seeds it
-- itself can set this to false.
process.seedRandom = true

-- Inbox keeps at most this many messages, Errors at most this many error
-- strings; when full, the oldest tenth is dropped at once (so that adding
-- stays cheap on average).
process.MAX_INBOX = 10000
process.MAX_ERRORS = 100

---------------------------------------------------------------------------
-- per-message state

local cur = {
  prints = {},     -- lines printed while handling this message
  eval = false,    -- this message is an Eval: Output without print=true
  timestamp = 0,   -- msg.Timestamp, what os.time() returns
}

---------------------------------------------------------------------------
-- globals

Colors = {
  red = "\27[31m", green = "\27[32m", blue = "\27[34m",
  yellow = "\27[33m", gray = "\27[90m", reset = "\27[0m",
}
_ENV.json = json
Utils = utils
Dump = dump
Handlers = handlers
_ENV.ao = ao
Inbox = {}
Errors = {}
Name = "aos"
-- Owner is set on the first message (see process.handle).

-- Text for one print() argument: tables pretty printed, no addresses.
local function print_text(v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "table" then return dump(v) end
  if tv == "number" or tv == "boolean" or tv == "nil" then
    if mtype(v) == "integer" then return format("%d", v) end
    return tostring(v)
  end
  return "<" .. tv .. ">"
end

-- print(...) collects a line (arguments joined by tabs) into the Output of
-- the message being handled.
print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = print_text((select(i, ...))) end
  local prints = cur.prints
  prints[#prints + 1] = concat(parts, "\t")
end

Prompt = function()
  return Colors.green .. tostring(Name) .. Colors.gray .. "@" .. Colors.blue ..
    "vmnode" .. Colors.gray .. "[Inbox:" .. Colors.red .. format("%d", #Inbox) ..
    Colors.gray .. "]" .. Colors.reset .. "> "
end

Send = function(msg) return ao.send(msg) end

-- Spawn(module, msg) / Spawn(msg) (this process's module) / Spawn(module)
Spawn = function(a, b)
  if type(a) == "table" and b == nil then return ao.spawn(ao._module, a) end
  return ao.spawn(a, b or {})
end

Receive = function(pattern) return handlers.receive(pattern) end

Assign = function(a) return ao.assign(a) end

-- Cache{key = value, ...} or Cache.key = value: the entries written while a
-- message is handled go to that message's Result.Cache (values as strings;
-- tables as JSON). Reading Cache.key gives the last value written.
do
  local store = {}
  Cache = setmetatable({}, {
    __index = function(_, k) return store[k] end,
    __newindex = function(_, k, v)
      local key, s = ao.cacheSet(k, v)
      if v == nil then store[key] = nil else store[key] = s end
    end,
    __call = function(self, t)
      if type(t) ~= "table" then error("Cache{...}: expected a table", 2) end
      for _, k in ipairs(utils.sortedKeys(t)) do self[k] = t[k] end
      return self
    end,
    __pairs = function() return next, store, nil end,
    __tostring = function() return "Cache " .. dump(store) end,
  })
end

-- os.time() is the timestamp (ms) of the message being handled. With a date
-- table, os.time{year=, month=, day=, ...} goes to the host's os.time if
-- there was one (the sandbox engine computes it in UTC). Nothing else of os
-- is provided by the library.
if type(os) ~= "table" then os = {} end
do
  local host_time = os.time
  os.time = function(t)
    if t ~= nil and host_time ~= nil then return host_time(t) end
    return cur.timestamp
  end
end

-- require(".json") and friends (aos spelling) map to the flat module names.
if type(require) == "function" then
  local base_require = require
  require = function(name)
    if type(name) == "string" then
      local stripped = name:gsub("^%.+", "")
      name = stripped
    end
    return base_require(name)
  end
end

---------------------------------------------------------------------------
-- normalisation

local NON_EXTRACTABLE = {}
for _, n in ipairs(ao.nonExtractableTags) do NON_EXTRACTABLE[n] = true end

-- process.normalize(msg): in place.
--   msg.TagArray = the tags as an array of {name=, value=} (as delivered;
--                  a name -> value map is turned into an array sorted by name)
--   msg.Tags     = name -> value (first occurrence of a name wins)
--   msg[name]    = value, for each tag not in ao.nonExtractableTags, unless
--                  the field is already set (host fields like Id win)
--   msg.From     = From-Process tag or msg.Owner when the host left it unset
--   msg.Data     = decoded JSON when Content-Type is application/json (the
--                  original string stays in msg.RawData)
--   msg.Timestamp= a number
function process.normalize(msg)
  local tags = msg.Tags
  local arr
  if type(tags) ~= "table" then
    arr = {}
  elseif tags[1] ~= nil or next(tags) == nil then
    arr = tags
  else
    arr = {}
    for _, k in ipairs(utils.sortedKeys(tags)) do
      arr[#arr + 1] = { name = k, value = tags[k] }
    end
  end
  local map = {}
  for _, t in ipairs(arr) do
    local name, value = t.name, t.value
    if type(name) == "string" then
      if map[name] == nil then map[name] = value end
      if not NON_EXTRACTABLE[name] and rawget(msg, name) == nil then
        msg[name] = value
      end
    end
  end
  msg.TagArray = arr
  msg.Tags = map

  if msg.From == nil then msg.From = map["From-Process"] or msg.Owner end
  if msg.Data == nil then msg.Data = "" end
  if type(msg.Timestamp) == "string" then
    msg.Timestamp = tointeger(tonumber(msg.Timestamp)) or tonumber(msg.Timestamp)
  end

  local ct = map["Content-Type"]
  if type(ct) == "string" and find(ct, "^%s*application/json") and
     type(msg.Data) == "string" then
    local ok, v = pcall(json.decode, msg.Data)
    if ok and v ~= nil then
      msg.RawData = msg.Data
      msg.Data = v
    end
  end

  msg.reply = function(t) return ao.reply(msg, t) end
  msg.forward = function(target, t) return ao.forward(msg, target, t) end
  return msg
end

---------------------------------------------------------------------------
-- determinism helpers

-- 32-bit FNV-1a of a string.
local function fnv1a(s)
  local h = 0x811C9DC5
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 0x01000193) & 0xFFFFFFFF
  end
  return h
end
process.hash = fnv1a

-- process._seed(msg, env): seed math.random from
-- Block-Height .. Owner .. Module .. Id of the message; returns the seed.
function process._seed(msg, env)
  local module = msg.Module
  if module == nil and type(env) == "table" and type(env.Module) == "table" then
    module = env.Module.Id
  end
  local function s(v) if v == nil then return "" end return tostring(v) end
  local seed = fnv1a(s(msg["Block-Height"]) .. s(msg.Owner) .. s(module) .. s(msg.Id))
  if randomseed and process.seedRandom then randomseed(seed) end
  return seed
end

---------------------------------------------------------------------------
-- built-in handlers

-- Drop the oldest entries of list when it holds more than max.
local function trim(list, max)
  local n = #list
  if n <= max then return end
  local drop = n - max + max // 10
  if drop > n then drop = n end
  tmove(list, drop + 1, n, 1)
  for i = n - drop + 1, n do list[i] = nil end
end
process.trim = trim

local function short_id(id)
  id = tostring(id)
  if #id <= 10 then return id end
  return sub(id, 1, 3) .. "..." .. sub(id, -3)
end

-- Eval: the process owner's code.
handlers.add("_eval",
  function(msg) return msg.Action == "Eval" end,
  function(msg)
    cur.eval = true
    if Owner == nil or msg.From ~= Owner then
      error("Eval refused: only the process Owner may evaluate code (From "
            .. tostring(msg.From) .. ")", 0)
    end
    local code = msg.RawData
    if code == nil then code = msg.Data end
    eval.run(code)
  end)

-- _default: messages no handler stopped go to the Inbox.
handlers.add("_default",
  function() return 0 end,
  function(msg)
    Inbox[#Inbox + 1] = msg
    trim(Inbox, process.MAX_INBOX)
    print(Colors.gray .. "New Message From " .. Colors.green ..
          short_id(msg.From) .. Colors.gray .. ": " .. Colors.blue ..
          "Action = " .. tostring(msg.Action or "(none)") .. Colors.reset)
  end)

---------------------------------------------------------------------------
-- handle

local function record_error(text)
  Errors[#Errors + 1] = text
  trim(Errors, process.MAX_ERRORS)
end

local function prompt_text()
  local ok, p = pcall(Prompt)
  if ok and type(p) == "string" then return p end
  return "aos> "
end

local function build_result(err)
  local box = ao.outbox
  local output = box.Output
  if output == nil then
    output = { data = concat(cur.prints, "\n"), prompt = prompt_text() }
    if not cur.eval then output.print = true end
  end
  local result = {
    Output = output,
    Messages = json.array(box.Messages),
    Spawns = json.array(box.Spawns),
    Assignments = json.array(box.Assignments),
    Cache = json.object(box.Cache),
  }
  if err == nil and box.Error ~= nil then err = tostring(box.Error) end
  if err ~= nil then
    -- effects of a failed message are not emitted; its Cache writes are kept
    -- (they are already visible in the process state)
    result.Error = err
    result.Messages = json.array({})
    result.Spawns = json.array({})
    result.Assignments = json.array({})
    record_error(err)
  end
  return result
end

local function boot(msg, env)
  local p = env.Process or {}
  if Owner == nil then
    Owner = utils.tagValue(p.Tags, "From-Process") or p.Owner or msg.From
  end
  local name = utils.tagValue(p.Tags, "Name")
  if type(name) == "string" and name ~= "" then Name = name end
  process.booted = true
end

-- process.handle(msg, env) -> result
-- See docs/lua-runtime.md for the fields of msg, env and the result.
function process.handle(msg, env)
  ao.clearOutbox()
  cur.prints = {}
  cur.eval = false
  if type(msg) ~= "table" then
    return build_result("process.handle: msg must be a table")
  end
  if type(env) ~= "table" then env = {} end
  ao.init(env)

  local ok, err = pcall(process.normalize, msg)
  if not ok then return build_result("normalize: " .. tostring(err)) end
  local ts = msg.Timestamp
  if type(ts) == "number" then cur.timestamp = tointeger(ts) or ts end
  process._seed(msg, env)

  local is_spawn = false
  if not process.booted then
    boot(msg, env)
    local p = env.Process or {}
    is_spawn = msg.Id ~= nil and msg.Id == p.Id
  end

  if is_spawn then
    -- the process's own spawn item: On-Boot=Data runs its data as code
    if msg.Tags["On-Boot"] == "Data" then
      local code = msg.RawData
      if code == nil then code = msg.Data end
      ok, err = pcall(handlers.run, "_boot", function() eval.run(code, "=boot") end,
                      msg, env)
      if not ok then return build_result(tostring(err)) end
    end
    return build_result(nil)
  end

  ok, err = pcall(handlers.evaluate, msg, env)
  if not ok then return build_result(tostring(err)) end
  return build_result(nil)
end

-- process.handle_json(msgJSON, envJSON) -> resultJSON (keys sorted).
function process.handle_json(m, e)
  local ok, msg = pcall(json.decode, m)
  local env = {}
  local err = not ok and msg or nil
  if ok and e ~= nil then
    ok, env = pcall(json.decode, e)
    if not ok then err = env end
  end
  local result
  if err ~= nil then
    cur.prints = {}
    cur.eval = false
    ao.clearOutbox()
    result = build_result("process.handle_json: " .. tostring(err))
  else
    result = process.handle(msg, env)
  end
  return json.encode(result, { skip_functions = true })
end

-- Standard or URL-safe base64 (padding optional) to bytes; nil on bad input.
local B64 = {}
do
  local abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[abc:byte(i)] = i - 1 end
  B64[("-"):byte()] = 62
  B64[("_"):byte()] = 63
end
function process.b64decode(s)
  local out, acc, bits = {}, 0, 0
  for i = 1, #s do
    local c = s:byte(i)
    if c == 61 then break end -- "="
    local v = B64[c]
    if not v then return nil end
    acc = (acc << 6) | v
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[#out + 1] = string.char((acc >> bits) & 0xff)
    end
  end
  return table.concat(out)
end

local cached_env

-- The host's C codec when it gave one (vmnode's workers do: see
-- src/vm/lua_host.c); the global is removed so process code cannot reach
-- or replace it. Same output as json.encode/decode for these shapes.
local host = rawget(_G, "vmnode_host")
if host ~= nil then rawset(_G, "vmnode_host", nil) end
local host_decode = type(host) == "table" and host.decode or nil
local host_encode = type(host) == "table" and host.encode or nil
local ARRAY_MT, OBJECT_MT = getmetatable(json.array()), getmetatable(json.object())
local function encode_result(r)
  if host_encode then return host_encode(r, json.null) end
  return json.encode(r, { skip_functions = true })
end

-- process.apply_json(payload) -> resultJSON, for hosts that call an entry
-- with one string: payload = {"msg": <msg>, "env": <env>}.
function process.apply_json(payload)
  local ok, v
  if host_decode then
    ok, v = pcall(host_decode, payload, ARRAY_MT, OBJECT_MT)
  else
    ok, v = pcall(json.decode, payload)
  end
  if not ok or type(v) ~= "table" or type(v.msg) ~= "table" then
    cur.prints = {}
    cur.eval = false
    ao.clearOutbox()
    local why = ok and 'expected {"msg": {...}, "env": {...}}' or tostring(v)
    return encode_result(build_result("process.apply_json: " .. why))
  end
  local env = v.env
  if env == nil and cached_env then
    env = cached_env -- the host sends env once per state; it never changes
  elseif type(env) ~= "table" then
    env = {}
  end
  cached_env = env
  local b64 = v.msg["Data-Base64"]
  if type(b64) == "string" then
    -- The host sends data that is not UTF-8 (JSON cannot carry it) as base64.
    v.msg["Data-Base64"] = nil
    v.msg.Data = process.b64decode(b64)
  end
  return encode_result(process.handle(v.msg, env))
end

return process
