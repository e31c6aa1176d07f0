-- detlog.lua: a fixed message log used by the determinism tests.
-- run(H, opts) applies it to a fresh network of instances and returns the
-- JSON encoding of every result, in order. opts.rawpairs adds a handler
-- whose output depends on raw `pairs` order (the same within one Lua state,
-- not across interpreters whose string-hash seeds differ).
local M = {}

local BOOT = [==[
Counter = 0
Ledger = {}
Handlers.add("Record", function(msg)
  -- a table built in insertion order, printed and encoded
  local t = {}
  for i = 1, 25 do t["k" .. ((i * 7) % 25)] = i * tonumber(msg.Data) end
  t.nested = { z = 1, y = { b = 2, a = 1 }, x = { 3, 2, 1 } }
  Ledger[msg.Id] = t
  print(t)
  print(json.encode(t))
  print(Utils.keys(t)[1], Utils.values(t)[1])
  Cache(t.nested.y)
  Cache{ ["last-" .. msg.Id] = t }
  local tags = {}
  for i = 1, 20 do tags["Tag-" .. i] = tostring(i) end
  tags.Action = "Recorded"
  Send({ Target = msg.From, Data = t, Tags = tags })
end)
Handlers.add("Random", function(msg)
  print(math.random(1, 1000000), math.random(), os.time())
end)
Handlers.add("Count", { Action = "Count", Step = "%d+" }, function(msg)
  Counter = Counter + tonumber(msg.Step)
  msg.reply({ Data = { counter = Counter, from = msg.From } })
end)
Handlers.add("Fail", function() error({ reason = "fail", detail = { b = 1, a = 2 } }) end)
]==]

local RAW = [==[
Handlers.add("Raw", function(msg)
  local t = {}
  for i = 1, 30 do t["key" .. i] = i end
  local order = {}
  for k in pairs(t) do order[#order + 1] = k end
  print(table.concat(order, ","))
end)
]==]

function M.run(H, opts)
  opts = opts or {}
  local json = H.json()
  local net = H.network()
  local a = net:add({ id = "determinism-A-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                      tags = { { name = "On-Boot", value = "Data" }, { name = "Name", value = "det" } },
                      data = BOOT .. (opts.rawpairs and RAW or "") })
  local b = net:add({ id = "determinism-B-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" })
  b:exec([[Handlers.add("Recorded", function(m) print(m.Data); print(m.Tags) end)]])
  net:send(a.id, { Action = "Record", Data = "3", From = b.id })
  net:send(a.id, { Action = "Random" })
  net:send(a.id, { Action = "Random" })
  net:send(a.id, { Action = "Count", From = b.id, Tags = { { name = "Step", value = "5" } } })
  net:send(a.id, { Action = "Fail" })
  net:send(a.id, { Action = "Eval", Data = "Ledger" })
  net:send(a.id, { Action = "Eval", Data = "Inbox" })
  net:send(a.id, { Action = "Unknown", From = "somebody-else-entirely" })
  net:send(a.id, { Action = "Eval", Data = "Errors" })
  if opts.rawpairs then net:send(a.id, { Action = "Raw" }) end
  net:run()
  local out = {}
  for i, entry in ipairs(net.log) do
    out[i] = entry.to .. " " .. json.encode(entry.result, { skip_functions = true })
  end
  return out
end

return M
