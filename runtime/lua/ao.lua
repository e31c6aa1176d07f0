-- ao.lua: the `ao` global: process identity and the outbox.
--
-- Every message, spawn and assignment a handler emits is appended to
-- ao.outbox; process.handle turns the outbox into the message's Result.
-- Entries are plain data (strings and arrays of {name=, value=} tags), so
-- the host can read them directly or through json.encode.

local json = require("json")
local utils = require("utils")

local type, tostring, ipairs, error, setmetatable =
  type, tostring, ipairs, error, setmetatable
local rep, format, mtype = string.rep, string.format, math.type

local ao = {
  _version = "vmnode-1",
  id = "",
  _module = "",
  authorities = {},
  reference = 0,
  env = { Process = { Tags = {} }, Module = { Tags = {} } },
  outbox = { Messages = {}, Spawns = {}, Assignments = {}, Cache = {} },
}

-- Tags that are never copied to msg[name] when a message is normalised.
ao.nonExtractableTags = {
  "Data-Protocol", "Variant", "From-Process", "From-Module", "Type", "From",
  "Owner", "Anchor", "Target", "Data", "Tags", "Read-Only",
}

-- Tags msg.forward does not carry over to the forwarded message.
ao.nonForwardableTags = {
  "Data-Protocol", "Variant", "From-Process", "From-Module", "Type", "From",
  "Owner", "Anchor", "Target", "Tags", "TagArray", "Hash-Chain", "Timestamp",
  "Nonce", "Epoch", "Signature", "Forwarded-By", "Pushed-For", "Read-Only",
  "Cron", "Block-Height", "Reference", "Sequence", "Id", "Module", "Scheduler",
  "Reply-To", "X-Origin", "X-Reference", "Data",
}

local NON_FORWARDABLE = {}
for _, n in ipairs(ao.nonForwardableTags) do NON_FORWARDABLE[n] = true end

-- Message fields that are not turned into tags by ao.send / ao.spawn.
local NOT_TAGS = { Target = true, Data = true, Anchor = true, Tags = true,
                   From = true, TagArray = true }

---------------------------------------------------------------------------
-- identity

-- ao.init(env): called by process.handle for every message.
function ao.init(env)
  env = env or {}
  ao.env = env
  local p = env.Process or {}
  local m = env.Module or {}
  if type(p.Id) == "string" then ao.id = p.Id end
  if type(m.Id) == "string" then ao._module = m.Id end
  -- Authority tags (one per tag, or comma separated)
  local auth = {}
  local tags = p.Tags
  if type(tags) == "table" then
    for _, t in ipairs(tags) do
      if type(t) == "table" and t.name == "Authority" and type(t.value) == "string" then
        for a in t.value:gmatch("[^,%s]+") do auth[#auth + 1] = a end
      end
    end
  end
  ao.authorities = auth
end

local function is_authority(addr)
  if addr == nil then return false end
  for _, a in ipairs(ao.authorities) do
    if a == addr then return true end
  end
  return false
end

-- ao.isTrusted(msg): signed by its sender directly, or pushed by one of the
-- process's Authority addresses (true when the process lists none).
function ao.isTrusted(msg)
  if #ao.authorities == 0 then return true end
  if msg.From == msg.Owner then return true end
  return is_authority(msg.Owner) or is_authority(msg.From)
end

-- ao.isAssignment(msg): the message was addressed to another process and
-- assigned to this one.
function ao.isAssignment(msg)
  return msg.Target ~= nil and msg.Target ~= ao.id
end

---------------------------------------------------------------------------
-- outbox

function ao.clearOutbox()
  ao.outbox = { Messages = {}, Spawns = {}, Assignments = {}, Cache = {} }
end

-- String form of a tag value: strings as they are, numbers in decimal,
-- booleans as "true"/"false".
local function tag_value(name, v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then
    if mtype(v) == "integer" then return format("%d", v) end
    return json.encode(v)
  end
  if tv == "boolean" then return tostring(v) end
  error("tag " .. tostring(name) .. ": value must be a string, number or boolean, not a " .. tv, 0)
end

-- A tag list that keeps the first value of each name.
local function tag_list()
  local list = json.array({})
  local seen = {}
  local function add(name, value)
    if type(name) ~= "string" or name == "" then
      error("tag names must be non-empty strings", 0)
    end
    if seen[name] then return end
    seen[name] = true
    list[#list + 1] = { name = name, value = tag_value(name, value) }
  end
  return list, add, seen
end

-- Tags from a message table: first the fields (sorted by name, skipping
-- Target/Data/Anchor/Tags/From and functions), then msg.Tags (an array of
-- {name, value} kept in order, or a name -> value map sorted by name).
local function add_message_tags(msg, add, fname)
  local keys = utils.sortedKeys(msg)
  for _, k in ipairs(keys) do
    local v = msg[k]
    if type(k) == "string" and not NOT_TAGS[k] and type(v) ~= "function" then
      if type(v) == "table" then
        error(fname .. ": field " .. k .. " is a table (tag values are strings)", 0)
      end
      add(k, v)
    end
  end
  local tags = msg.Tags
  if tags == nil then return end
  if type(tags) ~= "table" then error(fname .. ": Tags must be a table", 0) end
  if tags[1] ~= nil then
    for _, t in ipairs(tags) do
      if type(t) ~= "table" then error(fname .. ": Tags entries must be {name=, value=}", 0) end
      add(t.name, t.value)
    end
  else
    for _, k in ipairs(utils.sortedKeys(tags)) do add(k, tags[k]) end
  end
end

-- Data of an outgoing item: strings as they are, tables as JSON (with a
-- Content-Type tag), numbers and booleans as text, nil as "".
local function item_data(data)
  local td = type(data)
  if td == "string" then return data, nil end
  if data == nil then return "", nil end
  if td == "table" then return json.encode(data), "application/json" end
  if td == "number" or td == "boolean" then return tag_value("Data", data), nil end
  error("Data must be a string, table, number or boolean, not a " .. td, 0)
end

local function anchor(ref)
  return rep("0", 32 - #ref) .. ref
end

local function next_reference()
  ao.reference = ao.reference + 1
  return format("%d", ao.reference)
end

local SENT_MT = {
  __tostring = function(m)
    return "Message added to outbox (Target " .. tostring(m.Target) ..
      ", Reference " .. tostring(m.Reference) .. ")"
  end,
}

local SPAWN_MT = {
  __tostring = function(m)
    return "Spawn added to outbox (Module " .. tostring(m.Module) ..
      ", Reference " .. tostring(m.Reference) .. ")"
  end,
}

-- ao.send{Target=, Data=, <Tag>=value..., Tags={...}} -> message object
-- The object has the item's fields plus Reference and:
--   .onReply(fn) / .onReply(from, fn)  run fn on the reply (From = Target,
--                                      X-Reference = Reference)
--   .receive([from])                   wait for that reply (in a handler)
function ao.send(msg)
  if type(msg) ~= "table" then error("Send: expected a table", 2) end
  local target = msg.Target
  if type(target) ~= "string" or target == "" then
    error("Send: Target must be a non-empty string", 2)
  end
  local ref = next_reference()
  local tags, add, seen = tag_list()
  add("Data-Protocol", "ao")
  add("Variant", "ao.TN.1")
  add("Type", "Message")
  add("Reference", ref)
  local data, ctype = item_data(msg.Data)
  add_message_tags(msg, add, "Send")
  if ctype and not seen["Content-Type"] then add("Content-Type", ctype) end
  local item = { Target = target, Data = data, Anchor = anchor(ref), Tags = tags }
  local box = ao.outbox.Messages
  box[#box + 1] = item

  local handlers = require("handlers")
  local sent = setmetatable({
    Target = target, Data = data, Anchor = item.Anchor, Tags = tags,
    Reference = ref,
  }, SENT_MT)
  sent.onReply = function(a, b)
    local from, fn = target, a
    if b ~= nil then from, fn = a, b end
    handlers.addWaiter({ From = from, ["X-Reference"] = ref }, fn)
  end
  sent.receive = function(from)
    return handlers.receive({ From = from or target, ["X-Reference"] = ref })
  end
  return sent
end

-- ao.spawn(module, msg) -> spawn object
-- Emits a Type=Process item with From-Process, From-Module, Module and
-- Reference. The node answers with an Action=Spawned message whose
-- Reference (or X-Reference) is this Reference and whose From is this
-- process (or one of its Authority addresses); .onReply(fn) / .receive()
-- wait for it (msg.Process is the new process id).
function ao.spawn(module, msg)
  if type(module) ~= "string" or module == "" then
    error("Spawn: module must be a non-empty string", 2)
  end
  msg = msg or {}
  if type(msg) ~= "table" then error("Spawn: expected a table", 2) end
  local ref = next_reference()
  local tags, add, seen = tag_list()
  add("Data-Protocol", "ao")
  add("Variant", "ao.TN.1")
  add("Type", "Process")
  add("From-Process", ao.id)
  add("From-Module", ao._module)
  add("Module", module)
  add("Reference", ref)
  local data, ctype = item_data(msg.Data)
  add_message_tags(msg, add, "Spawn")
  if ctype and not seen["Content-Type"] then add("Content-Type", ctype) end
  local item = { Data = data, Anchor = anchor(ref), Tags = tags }
  local box = ao.outbox.Spawns
  box[#box + 1] = item

  local handlers = require("handlers")
  local function spawned(m)
    return m.Action == "Spawned"
      and (m.Reference == ref or m["X-Reference"] == ref)
      and (m.From == ao.id or is_authority(m.From))
  end
  local obj = setmetatable({
    Data = data, Anchor = item.Anchor, Tags = tags, Module = module,
    Reference = ref,
  }, SPAWN_MT)
  obj.onReply = function(fn) handlers.addWaiter(spawned, fn) end
  obj.receive = function() return handlers.receive(spawned) end
  return obj
end

-- ao.assign{Processes = {pid...} or pid, Message = id}
function ao.assign(a)
  if type(a) ~= "table" then error("Assign: expected a table", 2) end
  local procs = a.Processes
  if type(procs) == "string" then procs = { procs } end
  if type(procs) ~= "table" or procs[1] == nil then
    error("Assign: Processes must be a process id or a list of them", 2)
  end
  if type(a.Message) ~= "string" or a.Message == "" then
    error("Assign: Message must be a message id", 2)
  end
  local list = json.array({})
  for i, p in ipairs(procs) do
    if type(p) ~= "string" then error("Assign: process ids must be strings", 2) end
    list[i] = p
  end
  local entry = { Processes = list, Message = a.Message }
  local box = ao.outbox.Assignments
  box[#box + 1] = entry
  return entry
end

-- ao.cacheSet(key, value): record a Cache write for this message's result.
-- Values are stored as strings: tables as JSON, nil as "".
function ao.cacheSet(key, value)
  local tk = type(key)
  if tk == "number" then key = tag_value("Cache key", key)
  elseif tk ~= "string" or key == "" then
    error("Cache: keys must be non-empty strings", 3)
  end
  local tv = type(value)
  local s
  if value == nil then s = ""
  elseif tv == "string" then s = value
  elseif tv == "table" then s = json.encode(value)
  elseif tv == "number" or tv == "boolean" then s = tag_value(key, value)
  else error("Cache: cannot store a " .. tv, 3) end
  ao.outbox.Cache[key] = s
  return key, s
end

---------------------------------------------------------------------------
-- replies and forwards

-- msg.reply(t): send t (a table, or a string as Data) to msg["Reply-To"] or
-- msg.From, with X-Reference = msg.Reference (and X-Origin kept).
function ao.reply(msg, t)
  if type(t) == "string" then t = { Data = t } end
  if t == nil then t = {} end
  if type(t) ~= "table" then error("reply: expected a table or a string", 2) end
  local out = {}
  for k, v in utils.spairs(t) do out[k] = v end
  out.Target = msg["Reply-To"] or msg.From
  if out["X-Reference"] == nil and msg.Reference ~= nil then
    out["X-Reference"] = msg.Reference
  end
  if out["X-Origin"] == nil and msg["X-Origin"] ~= nil then
    out["X-Origin"] = msg["X-Origin"]
  end
  return ao.send(out)
end

-- msg.forward(target, t): send a copy of msg (its data and forwardable
-- tags) to target, with fields of t added or overriding, Reply-To set to
-- where a reply to the original should go and X-Origin to its first sender.
function ao.forward(msg, target, t)
  if type(target) ~= "string" or target == "" then
    error("forward: target must be a non-empty string", 2)
  end
  local out = {}
  for _, tag in ipairs(msg.TagArray or {}) do
    if type(tag.name) == "string" and not NON_FORWARDABLE[tag.name]
       and out[tag.name] == nil then
      out[tag.name] = tag.value
    end
  end
  local data = msg.RawData
  if data == nil then data = msg.Data end
  out.Data = data
  out["Reply-To"] = msg["Reply-To"] or msg.From
  out["X-Origin"] = msg["X-Origin"] or msg.From
  if t ~= nil then
    if type(t) ~= "table" then error("forward: expected a table", 2) end
    for k, v in utils.spairs(t) do out[k] = v end
  end
  out.Target = target
  return ao.send(out)
end

return ao
