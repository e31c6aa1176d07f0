-- handlers.lua: the `Handlers` global of an AO process.
--
-- A handler is { name, pattern, handle, maxRuns }. Handlers.evaluate(msg, env)
-- walks Handlers.list in order; for each handler whose pattern matches it
-- runs handle(msg, env) in a fresh coroutine, so that the handle can call
-- Handlers.receive (the `Receive` global) and be suspended until a matching
-- message arrives, possibly many messages later.
--
-- What a pattern match means (utils.matchesSpec gives the raw answer):
--   true, -1, "break"     the handler runs and evaluation stops
--   1, "continue"         the handler runs and evaluation goes on
--   false, nil, 0, "skip" the handler does not run
--   other numbers         < 0 like -1, > 0 like 1
-- When no handler stopped the evaluation, the handler named "_default" runs
-- (it is never matched in the normal walk).
--
-- The walk is over a snapshot of the list: handlers added while a message is
-- being handled see the next message, handlers removed while it is being
-- handled no longer run.

local utils = require("utils")

local type, tostring, ipairs, error, pcall, getmetatable, require =
  type, tostring, ipairs, error, pcall, getmetatable, require
local co_create, co_resume, co_yield, co_running, co_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running,
  coroutine.status
local tinsert, tremove, tmove = table.insert, table.remove, table.move
local mtype = math.type

local handlers = {
  _version = "vmnode-1",
  list = {},
  onceNonce = 0,
  receiveNonce = 0,
  utils = {},
}

-- The yield value a coroutine suspended in Receive gives back to the runner.
local RECEIVE = setmetatable({}, { __name = "Handlers.receive",
                                   __tostring = function() return "Receive" end })

-- The coroutine and handler name being run by this module (nil outside).
local current_co, current_name = nil, nil

---------------------------------------------------------------------------
-- helpers

local function find_index(name)
  local list = handlers.list
  for i = 1, #list do
    if list[i].name == name then return i end
  end
  return nil
end

local function callable(f)
  if type(f) == "function" then return true end
  if type(f) == "table" then
    local mt = getmetatable(f)
    return type(mt) == "table" and mt.__call ~= nil
  end
  return false
end

local function check_max_runs(maxRuns)
  if maxRuns == nil or maxRuns == "inf" then return maxRuns end
  if mtype(maxRuns) == "float" and maxRuns == math.floor(maxRuns) then
    maxRuns = math.tointeger(maxRuns)
  end
  if mtype(maxRuns) ~= "integer" or maxRuns < 1 then
    error("Handlers: maxRuns must be a positive integer or \"inf\"", 3)
  end
  return maxRuns
end

-- Accepts (name, pattern, handle[, maxRuns]) or (name, handle) where the
-- pattern is then the name itself (matching msg.Action == name).
local function make_entry(fname, name, pattern, handle, maxRuns)
  if handle == nil and callable(pattern) and type(pattern) ~= "table" then
    handle, pattern = pattern, name
  end
  if type(name) ~= "string" or name == "" then
    error("Handlers." .. fname .. ": name must be a non-empty string", 3)
  end
  local tp = type(pattern)
  if tp ~= "string" and tp ~= "function" and tp ~= "table" then
    error("Handlers." .. fname .. ": pattern must be a string, function or table", 3)
  end
  if not callable(handle) then
    error("Handlers." .. fname .. ": handle must be a function", 3)
  end
  return { name = name, pattern = pattern, handle = handle,
           maxRuns = check_max_runs(maxRuns) }
end

local function remove_at(i)
  local h = tremove(handlers.list, i)
  if h then h.removed = true end
  return h
end

local function remove_named(name)
  local found = false
  local i = find_index(name)
  while i do
    remove_at(i)
    found = true
    i = find_index(name)
  end
  return found
end

-- Position after the waiters (Receive / onReply entries) that lead the list.
local function after_leading_waiters()
  local list = handlers.list
  local i = 1
  while list[i] and list[i].waiter do i = i + 1 end
  return i
end

---------------------------------------------------------------------------
-- adding and removing

-- Handlers.add(name, pattern, handle[, maxRuns]) / Handlers.add(name, handle)
-- A handler with the same name is replaced where it stands; a new one goes
-- to the end of the list. (add and the other adders return nothing, so an
-- Eval of them prints nothing.)
function handlers.add(name, pattern, handle, maxRuns)
  local entry = make_entry("add", name, pattern, handle, maxRuns)
  local i = find_index(entry.name)
  if i then
    local old = handlers.list[i]
    old.pattern, old.handle, old.maxRuns = entry.pattern, entry.handle, entry.maxRuns
    old.waiter, old.co, old.owner = nil, nil, nil
    return
  end
  handlers.list[#handlers.list + 1] = entry
end

handlers.append = handlers.add

-- Handlers.prepend(...): like add, but the handler goes first (an existing
-- handler of that name is moved).
function handlers.prepend(name, pattern, handle, maxRuns)
  local entry = make_entry("prepend", name, pattern, handle, maxRuns)
  remove_named(entry.name)
  tinsert(handlers.list, 1, entry)
end

local function positioned(fname, target, offset)
  if type(target) ~= "string" then
    error("Handlers." .. fname .. ": expected the name of a handler", 2)
  end
  return {
    add = function(name, pattern, handle, maxRuns)
      local entry = make_entry(fname .. "(" .. target .. ").add", name,
                               pattern, handle, maxRuns)
      if entry.name == target then
        error("Handlers." .. fname .. ": a handler cannot be placed " .. fname
              .. " itself", 2)
      end
      remove_named(entry.name)
      local i = find_index(target)
      if not i then
        error("Handlers." .. fname .. ": no handler named " .. target, 2)
      end
      tinsert(handlers.list, i + offset, entry)
    end,
  }
end

-- Handlers.before(name).add(...) / Handlers.after(name).add(...)
function handlers.before(target) return positioned("before", target, 0) end
function handlers.after(target) return positioned("after", target, 1) end

-- Handlers.once(name, pattern, handle) / Handlers.once(pattern, handle):
-- runs at most once; placed at the front of the list (after pending
-- Receive waiters). Without a name one is generated ("_once_<n>").
function handlers.once(name, pattern, handle)
  if handle == nil then
    handle, pattern = pattern, name
    handlers.onceNonce = handlers.onceNonce + 1
    name = "_once_" .. handlers.onceNonce
  end
  local entry = make_entry("once", name, pattern, handle, 1)
  remove_named(entry.name)
  tinsert(handlers.list, after_leading_waiters(), entry)
end

-- Handlers.remove(name) -> true when a handler was removed.
function handlers.remove(name)
  return remove_named(name)
end

-- Names of the handlers in order (handy in Eval: Handlers.names()).
function handlers.names()
  local out = {}
  for i, h in ipairs(handlers.list) do out[i] = h.name end
  return out
end

-- Used by ao.onReply: a one-shot handler queued with the Receive waiters.
function handlers.addWaiter(pattern, handle)
  handlers.receiveNonce = handlers.receiveNonce + 1
  local entry = make_entry("once", "_reply_" .. handlers.receiveNonce,
                           pattern, handle, 1)
  entry.waiter = true
  tinsert(handlers.list, after_leading_waiters(), entry)
  return entry
end

---------------------------------------------------------------------------
-- Receive

-- Handlers.receive(pattern) -> msg
-- Suspends the handler that calls it until a message matching pattern
-- arrives; that message is then given to this handler (and to no other).
-- Waiters are matched before every other handler, oldest first.
function handlers.receive(pattern)
  local co, main = co_running()
  if main or co ~= current_co then
    error("Receive: must be called from a handler (not from the main chunk "
          .. "or from a coroutine of your own)", 2)
  end
  local tp = type(pattern)
  if tp ~= "string" and tp ~= "function" and tp ~= "table" then
    error("Receive: pattern must be a string, function or table", 2)
  end
  handlers.receiveNonce = handlers.receiveNonce + 1
  local entry = {
    name = "_receive_" .. handlers.receiveNonce,
    pattern = pattern,
    handle = function() end,
    maxRuns = 1,
    waiter = true,
    co = co,
    owner = current_name,
  }
  tinsert(handlers.list, after_leading_waiters(), entry)
  return co_yield(RECEIVE)
end

---------------------------------------------------------------------------
-- running

local function error_text(e)
  if type(e) == "string" then return e end
  local ok, s = pcall(function() return require("dump")(e) end)
  if ok then return s end
  return tostring(e)
end

-- Run fn(msg, env) (or resume a suspended coroutine) as the handler `name`.
-- Errors are raised as strings that name the handler.
local function run_in_coroutine(name, co, msg, env)
  local prev_co, prev_name = current_co, current_name
  current_co, current_name = co, name
  local ok, res = co_resume(co, msg, env)
  current_co, current_name = prev_co, prev_name
  if not ok then
    error('handler "' .. tostring(name) .. '": ' .. error_text(res), 0)
  end
  if co_status(co) == "suspended" and res ~= RECEIVE then
    error('handler "' .. tostring(name) .. '": yielded outside Receive', 0)
  end
end

-- handlers.run(name, fn, msg, env): run fn as a handler would be run
-- (in a coroutine, Receive allowed). Used for boot code.
function handlers.run(name, fn, msg, env)
  return run_in_coroutine(name, co_create(fn), msg, env)
end

local function run_entry(h, msg, env)
  if h.co then
    if co_status(h.co) ~= "suspended" then return end
    return run_in_coroutine(h.owner or h.name, h.co, msg, env)
  end
  local fn = h.handle
  if type(fn) ~= "function" then
    local obj = fn
    fn = function(m, e) return obj(m, e) end
  end
  return run_in_coroutine(h.name, co_create(fn), msg, env)
end

-- Turn a raw pattern answer into -1 (run, stop), 1 (run, go on) or 0.
local function match_code(r, name)
  if r == true then return -1 end
  if r == false or r == nil then return 0 end
  local tr = type(r)
  if tr == "number" then
    if r < 0 then return -1 end
    if r > 0 then return 1 end
    return 0
  end
  if tr == "string" then
    if r == "break" then return -1 end
    if r == "continue" then return 1 end
    return 0
  end
  error('handler "' .. tostring(name) .. '": pattern returned a ' .. tr
        .. " (expected a boolean, number or string)", 0)
end
handlers.matchCode = match_code

-- Handlers.evaluate(msg, env) -> true when a handler stopped the evaluation
-- (false when the message went to _default).
function handlers.evaluate(msg, env)
  if type(msg) ~= "table" then error("Handlers.evaluate: msg must be a table", 2) end
  env = env or {}
  local list = handlers.list
  local snapshot = tmove(list, 1, #list, 1, {})
  for _, h in ipairs(snapshot) do
    if h.co and not h.removed and co_status(h.co) ~= "suspended" then
      -- a waiter whose coroutine died (e.g. stopped by the host): drop it
      for i = 1, #handlers.list do
        if handlers.list[i] == h then remove_at(i); break end
      end
    end
    if not h.removed and h.name ~= "_default" then
      local ok, r = pcall(utils.matchesSpec, msg, h.pattern)
      if not ok then
        error('handler "' .. tostring(h.name) .. '": pattern failed: '
              .. error_text(r), 0)
      end
      local m = match_code(r, h.name)
      if m ~= 0 then
        -- count the run first: a waiter may register again while it runs
        if type(h.maxRuns) == "number" then
          h.maxRuns = h.maxRuns - 1
          if h.maxRuns <= 0 then
            for i = 1, #handlers.list do
              if handlers.list[i] == h then remove_at(i); break end
            end
          end
        end
        run_entry(h, msg, env)
        if m < 0 then return true end
      end
    end
  end
  local i = find_index("_default")
  if i then run_entry(handlers.list[i], msg, env) end
  return false
end

---------------------------------------------------------------------------
-- Handlers.utils: pattern and handle builders

-- Pattern: the message carries tag `name` with exactly `value`.
function handlers.utils.hasMatchingTag(name, value)
  return function(msg)
    local tags = msg.Tags
    return type(tags) == "table" and tags[name] == value
  end
end

-- Pattern: the message carries tag `name` with one of `values`.
function handlers.utils.hasMatchingTagOf(name, values)
  return function(msg)
    local tags = msg.Tags
    if type(tags) ~= "table" then return false end
    local v = tags[name]
    for _, want in ipairs(values) do
      if v == want then return true end
    end
    return false
  end
end

-- Pattern: the message data equals `value`.
function handlers.utils.hasMatchingData(value)
  return function(msg) return msg.Data == value end
end

-- Handle: reply to the message with `input` (a string is the Data).
function handlers.utils.reply(input)
  return function(msg)
    if type(input) == "string" then
      return msg.reply({ Data = input })
    end
    local copy = {}
    for k, v in utils.spairs(input) do copy[k] = v end
    return msg.reply(copy)
  end
end

-- Pattern: like `pattern`, but a match lets the evaluation go on.
function handlers.utils.continue(pattern)
  return function(msg)
    local m = match_code(utils.matchesSpec(msg, pattern), "continue")
    if m ~= 0 then return 1 end
    return 0
  end
end

return handlers
