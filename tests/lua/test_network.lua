-- Two or more isolated process instances exchanging messages through a tiny
-- scheduler (helper.network): Send/onReply, Receive, Spawn/Spawned.
return function(test, H)
  local PONG_CODE = [[
    Handlers.add("Ping", function(msg)
      Pings = (Pings or 0) + 1
      msg.reply({ Action = "Pong", Data = "pong " .. msg.Data })
    end)]]

  local function pair()
    local net = H.network()
    local a = net:add({ id = "process-A-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" })
    local b = net:add({ id = "process-B-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                        tags = { { name = "On-Boot", value = "Data" } }, data = PONG_CODE })
    return net, a, b
  end

  test("globals do not leak between the two processes", function()
    local _, a, b = pair()
    H.eq(type(b:G().Handlers.list), "table")
    H.eq(#a:G().Handlers.list, 2)
    H.eq(#b:G().Handlers.list, 3)
    a:G().OnlyInA = 1
    H.eq(b:G().OnlyInA, nil)
  end)

  test("Send + onReply across processes", function()
    local net, a, b = pair()
    local r = net:send(a.id, { Action = "Eval", Data = [[
      Send({ Target = "]] .. b.id .. [[", Action = "Ping", Data = "one" }).onReply(function(reply)
        Got = reply.Data
        print("reply: " .. reply.Data)
      end)]] })
    H.eq(r.Error, nil)
    H.eq(#r.Messages, 1)
    net:run()
    H.eq(b:G().Pings, 1)
    H.eq(a:G().Got, "pong one")
    local last = net.log[#net.log]
    H.eq(last.to, a.id)
    H.eq(last.result.Output.data, "reply: pong one")
    H.eq(#a:G().Inbox, 0, "the reply went to the onReply handler, not the Inbox")
    H.eq(#a:G().Handlers.list, 2, "the onReply handler is gone")
  end)

  test("Receive suspends a handler until the reply arrives", function()
    local net, a, b = pair()
    a:exec([[
      Handlers.add("Start", function(msg)
        print("asking")
        local reply = Send({ Target = "]] .. b.id .. [[", Action = "Ping", Data = msg.Data }).receive()
        print("resumed with " .. reply.Data)
        Result = reply.Data
        local second = Send({ Target = "]] .. b.id .. [[", Action = "Ping", Data = "again" }).receive()
        Result2 = second.Data
        msg.reply({ Data = Result .. "+" .. Result2 })
      end)]])
    local r = net:send(a.id, { Action = "Start", Data = "x", From = "user-wallet" })
    H.eq(r.Error, nil)
    H.eq(r.Output.data, "asking")
    H.eq(#r.Messages, 1)
    H.eq(a:G().Result, nil, "suspended")
    local names = a:G().Handlers.names()
    H.eq(names[1]:sub(1, 9), "_receive_", "a waiter is queued first")
    net:run()
    H.eq(a:G().Result, "pong x")
    H.eq(a:G().Result2, "pong again")
    H.eq(b:G().Pings, 2)
    -- the final reply to the user was emitted by A when the second receive resumed
    local final = net.log[#net.log].result
    H.eq(final.Messages[1].Target, "user-wallet")
    H.eq(final.Messages[1].Data, "pong x+pong again")
    H.contains(net.log[#net.log - 2].result.Output.data, "resumed with pong x")
    H.eq(#a:G().Inbox, 0)
    H.same(a:G().Handlers.names(), { "_eval", "_default", "Start" })
  end)

  test("Receive inside Eval, and a generic Receive pattern", function()
    local net, a, b = pair()
    net:send(a.id, { Action = "Eval", Data = [[
      Send({ Target = "]] .. b.id .. [[", Action = "Ping", Data = "e" })
      local m = Receive({ Action = "Pong" })
      print("eval got " .. m.Data)
      return m.From]] })
    net:run()
    local last = net.log[#net.log].result
    H.eq(last.Error, nil)
    H.eq(last.Output.data, "eval got pong e\n" .. b.id)
  end)

  test("a message that does not match the waiter goes on normally", function()
    local net, a, b = pair()
    a:exec([[Handlers.add("Wait", function() W = Receive({ Action = "Wanted" }).Data end)]])
    net:send(a.id, { Action = "Wait" })
    local r = net:send(a.id, { Action = "Other" })
    H.eq(#a:G().Inbox, 1)
    H.contains(H.plain(r.Output.data), "Action = Other")
    H.eq(a:G().W, nil)
    net:send(a.id, { Action = "Wanted", Data = "yes" })
    H.eq(a:G().W, "yes")
    H.eq(#a:G().Inbox, 1)
  end)

  test("two waiters are served oldest first", function()
    local net, a = pair()
    a:exec([[
      Order = {}
      Handlers.add("W", function(msg) local m = Receive({ Action = "Go" }); Order[#Order + 1] = msg.Data .. ":" .. m.Data end)]])
    net:send(a.id, { Action = "W", Data = "first" })
    net:send(a.id, { Action = "W", Data = "second" })
    net:send(a.id, { Action = "Go", Data = "1" })
    net:send(a.id, { Action = "Go", Data = "2" })
    H.same(a:G().Order, { "first:1", "second:2" })
  end)

  test("an error after Receive resumes is reported on the resuming message", function()
    local net, a = pair()
    a:exec([[Handlers.add("Fragile", function() Receive({ Action = "Go" }); error("late failure") end)]])
    local r = net:send(a.id, { Action = "Fragile" })
    H.eq(r.Error, nil)
    r = net:send(a.id, { Action = "Go" })
    H.contains(r.Error, 'handler "Fragile"')
    H.contains(r.Error, "late failure")
    H.eq(net:send(a.id, { Action = "Eval", Data = "1 + 1" }).Output.data, "2")
  end)

  test("Receive outside a handler is an error", function()
    local p = H.proc()
    H.raises(function() p:exec([[Receive({ Action = "x" })]]) end, "must be called from a handler")
    local r = p:eval([[local co = coroutine.create(function() Receive("x") end); return coroutine.resume(co)]])
    H.contains(r.Output.data, "must be called from a handler")
    p:exec([[Handlers.add("Y", function() coroutine.yield(1) end)]])
    H.contains(p:msg({ Action = "Y" }).Error, "yielded outside Receive")
  end)

  test("Spawn answered by Spawned: onReply and receive", function()
    local net = H.network()
    local parent = net:add({ id = "parent-process-xxxxxxxxxxxxxxxxxxxxxxxxxxxx" })
    net:send(parent.id, { Action = "Eval", Data = [[
      Spawn("child-module", { Data = "Handlers.add('Ping', function(m) m.reply({ Data = 'child pong' }) end)",
                              ["On-Boot"] = "Data", Name = "kid" }).onReply(function(m) ChildA = m.Process end)
      ]] })
    net:run()
    local childA = parent:G().ChildA
    H.ok(childA, "onReply got the Spawned message")
    H.ok(net.procs[childA], "child exists")
    H.eq(net.procs[childA]:G().Owner, parent.id, "the child's Owner is the parent process")
    H.eq(net.procs[childA]:G().Name, "kid")

    parent:exec([[
      Handlers.add("Make", function(msg)
        local spawned = Spawn("child-module", { Data = "Handlers.add('Ping', function(m) m.reply({ Data = 'child pong' }) end)",
                                                ["On-Boot"] = "Data" }).receive()
        ChildB = spawned.Process
        local reply = Send({ Target = ChildB, Action = "Ping" }).receive()
        ChildReply = reply.Data
      end)]])
    net:send(parent.id, { Action = "Make" })
    net:run()
    local childB = parent:G().ChildB
    H.ok(childB and childB ~= childA, "second child")
    H.eq(parent:G().ChildReply, "child pong")
    H.eq(#parent:G().Inbox, 0, "Spawned messages were consumed by their waiters")
  end)

  test("a Spawned message from a stranger does not wake the waiter", function()
    local p = H.proc()
    p:exec([[Handlers.add("Make", function() Kid = Spawn("m", {}).receive().Process end)]])
    p:msg({ Action = "Make" })
    p:msg({ Action = "Spawned", From = "stranger",
            Tags = { { name = "Process", value = "fake" }, { name = "Reference", value = "1" } } })
    H.eq(p:G().Kid, nil)
    H.eq(#p:G().Inbox, 1)
    p:msg({ Action = "Spawned", From = p.id,
            Tags = { { name = "Process", value = "real" }, { name = "Reference", value = "1" } } })
    H.eq(p:G().Kid, "real")
  end)
end
