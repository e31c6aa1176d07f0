-- helper.lua: test helpers for the Lua process library.
--
-- H.instance() makes a fresh, isolated copy of the library: its own global
-- table (only the safe base functions and copies of string/table/math/utf8/
-- coroutine, no io/os/package/debug, text-only load), its own module cache,
-- loaded from runtime/lua/ with a require like the host's. Two instances
-- share nothing but the interpreter (string metatable, math.random state).
--
-- H.network() is a tiny scheduler: it delivers the Messages and Spawns in a
-- process's result to the other instances, in order, like the node would.

local H = {}

H.root = H.root or os.getenv("VMNODE_ROOT") or "."

local SAFE = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
  "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
  "tostring", "type", "xpcall", "_VERSION",
}

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

function H.instance(opts)
  opts = opts or {}
  local G = {}
  if opts.os_time then G.os = { time = opts.os_time } end
  for _, k in ipairs(SAFE) do G[k] = _G[k] end
  G.string = copy(string)
  G.string.dump = nil
  G.table = copy(table)
  G.math = copy(math)
  G.utf8 = copy(utf8)
  G.coroutine = copy(coroutine)
  -- With the C API a new thread inherits the creating thread's hook; a hook
  -- set from Lua (debug.sethook) is looked up per thread, so mimic the C
  -- behaviour here for tests that simulate the host's instruction budget.
  G.coroutine.create = function(f)
    local co = coroutine.create(f)
    local hook, mask, count = debug.gethook()
    if hook then debug.sethook(co, hook, mask, count) end
    return co
  end
  G.load = function(chunk, name, mode, ...)
    if type(chunk) == "string" and chunk:byte(1) == 27 then
      return nil, "binary chunks are not allowed"
    end
    if select("#", ...) == 0 then return load(chunk, name, "t", G) end
    return load(chunk, name, "t", (...))
  end
  G._G = G
  local loaded = {}
  G.require = function(name)
    local v = loaded[name]
    if v ~= nil then return v end
    local path = H.root .. "/runtime/lua/" .. name:gsub("%.", "/") .. ".lua"
    local f, err = loadfile(path, "t", G)
    if not f then error("module '" .. name .. "' not found: " .. tostring(err), 2) end
    local r = f(name)
    if r == nil then r = true end
    loaded[name] = r
    return r
  end
  local process = G.require("process")
  return { G = G, process = process, loaded = loaded, json = loaded.json }
end

-- A JSON encoder independent of any instance (the library's own module,
-- loaded once in a fresh instance).
local shared
function H.json()
  shared = shared or H.instance()
  return shared.json
end

---------------------------------------------------------------------------
-- assertions (raise with a readable message)

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, s = pcall(function() return H.json().encode(v, { skip_functions = true }) end)
    if ok then return s end
  end
  return tostring(v)
end
H.show = show

function H.eq(got, want, what)
  if got ~= want then
    error((what and (what .. ": ") or "") .. "expected " .. show(want) ..
          ", got " .. show(got), 2)
  end
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
H.deepEqual = deep_equal

function H.same(got, want, what)
  if not deep_equal(got, want) then
    error((what and (what .. ": ") or "") .. "expected " .. show(want) ..
          ", got " .. show(got), 2)
  end
end

function H.ok(v, what)
  if not v then error((what or "assertion failed"), 2) end
  return v
end

function H.contains(s, sub, what)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    error((what and (what .. ": ") or "") .. "expected " .. show(s) ..
          " to contain " .. show(sub), 2)
  end
end

function H.raises(fn, sub, what)
  local ok, err = pcall(fn)
  if ok then error((what or "expected an error") .. ", got none", 2) end
  if sub and not tostring(err):find(sub, 1, true) then
    error((what and (what .. ": ") or "") .. "error " .. show(tostring(err)) ..
          " does not contain " .. show(sub), 2)
  end
  return err
end

-- Value of the first tag `name` in an array of {name=, value=}.
function H.tag(tags, name)
  for _, t in ipairs(tags or {}) do
    if t.name == name then return t.value end
  end
  return nil
end

-- Remove ANSI colour codes.
function H.plain(s)
  return (s:gsub("\27%[[%d;]*m", ""))
end

---------------------------------------------------------------------------
-- single process convenience

-- H.proc{id=, owner=, tags=, data=, module=} -> p with p:send(fields)
-- Boots a fresh instance with its spawn message and returns it along with
-- the spawn result.
local Proc = {}
Proc.__index = Proc

H.OWNER = "owner-wallet-address-0123456789abcdef0123"
H.NODE = "node-address-0000000000000000000000000000"

function H.proc(o)
  o = o or {}
  local p = setmetatable({}, Proc)
  p.inst = H.instance()
  p.id = o.id or "process-id-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  p.owner = o.owner or H.OWNER
  p.clock = o.clock or 1700000000000
  p.height = o.height or 1000
  p.n = 0
  local tags = {
    { name = "Data-Protocol", value = "ao" },
    { name = "Variant", value = "ao.TN.1" },
    { name = "Type", value = "Process" },
    { name = "Module", value = o.module or "module-id" },
    { name = "Scheduler", value = H.NODE },
  }
  for _, t in ipairs(o.tags or {}) do tags[#tags + 1] = t end
  p.env = {
    Process = { Id = p.id, Owner = p.owner, Tags = tags },
    Module = { Id = o.module or "module-id", Owner = "module-owner", Tags = {} },
  }
  if o.noboot then return p end
  p.bootResult = p.inst.process.handle({
    Id = p.id, Owner = p.owner, Target = p.id,
    From = H.tag(tags, "From-Process") or p.owner,
    Tags = tags, Data = o.data or "", Timestamp = p.clock,
    ["Block-Height"] = p.height, Module = o.module or "module-id",
  }, p.env)
  return p
end

-- p:msg(fields) -> result. fields: From (default owner), Action, Data,
-- Tags (array, added after Action), Id, and any other field set as given.
function Proc:msg(f)
  f = f or {}
  self.n = self.n + 1
  self.clock = self.clock + 1000
  local tags = {
    { name = "Data-Protocol", value = "ao" },
    { name = "Variant", value = "ao.TN.1" },
    { name = "Type", value = "Message" },
  }
  if f.Action then tags[#tags + 1] = { name = "Action", value = f.Action } end
  for _, t in ipairs(f.Tags or {}) do tags[#tags + 1] = t end
  local msg = {
    Id = f.Id or string.format("msg-%s-%04d", self.id:sub(1, 8), self.n),
    Owner = f.Owner or f.From or self.owner,
    From = f.From or self.owner,
    Target = self.id,
    Tags = tags,
    Data = f.Data or "",
    Timestamp = f.Timestamp or self.clock,
    ["Block-Height"] = self.height,
    Nonce = self.n,
    Module = self.env.Module.Id,
  }
  for k, v in pairs(f) do
    if k ~= "Action" and k ~= "Tags" and msg[k] == nil then msg[k] = v end
  end
  return self.inst.process.handle(msg, self.env)
end

function Proc:eval(code, from)
  return self:msg({ Action = "Eval", Data = code, From = from })
end

function Proc:G() return self.inst.G end

-- Run Lua source inside the instance (its globals), return its results.
function Proc:exec(code)
  local f = assert(load(code, "=test", "t", self.inst.G))
  return f()
end

function H.exec(inst, code)
  local f = assert(load(code, "=test", "t", inst.G))
  return f()
end

---------------------------------------------------------------------------
-- a tiny network of processes

local Net = {}
Net.__index = Net

function H.network()
  return setmetatable({ procs = {}, queue = {}, log = {}, n = 0,
                        clock = 1700000000000, spawned = 0 }, Net)
end

function Net:add(o)
  o = o or {}
  local p = H.proc(o)
  self.procs[p.id] = p
  self.log[#self.log + 1] = { to = p.id, result = p.bootResult, spawn = true }
  self:collect(p.id, p.bootResult)
  return p
end

-- queue what a result emits
function Net:collect(from, result)
  for _, m in ipairs(result.Messages or {}) do
    self.queue[#self.queue + 1] = { kind = "message", from = from, item = m }
  end
  for _, s in ipairs(result.Spawns or {}) do
    self.queue[#self.queue + 1] = { kind = "spawn", from = from, item = s }
  end
end

-- deliver one message from a wallet (or from=pid) to target
function Net:send(target, f)
  local p = assert(self.procs[target], "no process " .. tostring(target))
  local r = p:msg(f)
  self.log[#self.log + 1] = { to = target, result = r }
  self:collect(target, r)
  return r
end

local function deliver_item(self, q)
  local item = q.item
  local p = self.procs[item.Target]
  if not p then return nil end
  local tags = { { name = "From-Process", value = q.from } }
  for _, t in ipairs(item.Tags) do
    if t.name ~= "From-Process" then tags[#tags + 1] = t end
  end
  self.n = self.n + 1
  p.n = p.n + 1
  p.clock = p.clock + 1000
  local msg = {
    Id = string.format("net-msg-%04d", self.n),
    Owner = H.NODE, From = q.from, Target = item.Target, Anchor = item.Anchor,
    Tags = tags, Data = item.Data, Timestamp = p.clock,
    ["Block-Height"] = p.height, Nonce = p.n, Module = p.env.Module.Id,
  }
  local r = p.inst.process.handle(msg, p.env)
  self.log[#self.log + 1] = { to = item.Target, result = r }
  self:collect(item.Target, r)
  return r
end

local function do_spawn(self, q)
  local item = q.item
  self.spawned = self.spawned + 1
  local pid = string.format("child-%02d-of-%s", self.spawned, q.from:sub(1, 12))
  local extra = {}
  for _, t in ipairs(item.Tags) do
    if t.name ~= "Data-Protocol" and t.name ~= "Variant" and t.name ~= "Type"
       and t.name ~= "Module" and t.name ~= "Scheduler" then
      extra[#extra + 1] = t
    end
  end
  local child = self:add({ id = pid, owner = H.NODE, tags = extra, data = item.Data,
                           module = H.tag(item.Tags, "Module") })
  -- answer the parent: Action=Spawned, Process=<pid>, Reference=<ref>
  local parent = self.procs[q.from]
  if parent then
    deliver_item(self, { from = q.from, item = {
      Target = q.from, Data = "", Anchor = item.Anchor,
      Tags = {
        { name = "Data-Protocol", value = "ao" },
        { name = "Variant", value = "ao.TN.1" },
        { name = "Type", value = "Message" },
        { name = "Action", value = "Spawned" },
        { name = "Process", value = pid },
        { name = "Reference", value = H.tag(item.Tags, "Reference") },
      } } })
  end
  return child
end

-- run until nothing is queued (or max steps)
function Net:run(max)
  max = max or 1000
  local steps = 0
  while #self.queue > 0 do
    steps = steps + 1
    if steps > max then error("network did not settle in " .. max .. " steps") end
    local q = table.remove(self.queue, 1)
    if q.kind == "message" then deliver_item(self, q) else do_spawn(self, q) end
  end
  return steps
end

return H
