-- Outbox: Send / ao.send tags, references, anchors, data; reply, forward,
-- Spawn, Assign, Cache.
return function(test, H)
  local function names(tags)
    local out = {}
    for i, t in ipairs(tags) do out[i] = t.name .. "=" .. t.value end
    return table.concat(out, " ")
  end

  test("Send adds protocol tags, Reference and a padded Anchor", function()
    local p = H.proc()
    local r = p:eval([[
      Send({ Target = "target-pid", Data = "hello", Action = "Ping", Zeta = 1, Alpha = true,
             Tags = { { name = "Custom", value = "c" } } })
      Send({ Target = "other", Action = "Two" })]])
    H.eq(r.Error, nil)
    H.eq(#r.Messages, 2)
    local m = r.Messages[1]
    H.eq(m.Target, "target-pid")
    H.eq(m.Data, "hello")
    H.eq(m.Anchor, "00000000000000000000000000000001")
    H.eq(names(m.Tags),
      "Data-Protocol=ao Variant=ao.TN.1 Type=Message Reference=1 Action=Ping Alpha=true Zeta=1 Custom=c")
    local m2 = r.Messages[2]
    H.eq(m2.Anchor, "00000000000000000000000000000002")
    H.eq(H.tag(m2.Tags, "Reference"), "2")
    H.eq(m2.Data, "")
    -- references keep counting across messages
    r = p:eval([[Send({ Target = "t" })]])
    H.eq(H.tag(r.Messages[1].Tags, "Reference"), "3")
  end)

  test("Send: Tags as a map, duplicate names, table data", function()
    local p = H.proc()
    local r = p:eval([[
      Send({ Target = "t", Type = "Override", Tags = { B = "2", A = "1", Action = "Dup" }, Action = "First",
             Data = { z = 1, a = { true } } })]])
    local m = r.Messages[1]
    H.eq(names(m.Tags),
      "Data-Protocol=ao Variant=ao.TN.1 Type=Message Reference=1 Action=First A=1 B=2 Content-Type=application/json")
    H.eq(m.Data, '{"a":[true],"z":1}')
  end)

  test("Send returns an object; bad sends are errors", function()
    local p = H.proc()
    local r = p:eval([[local m = Send({ Target = "t", Data = "x" }); return m.Reference, m.Target, type(m.onReply), type(m.receive)]])
    H.eq(r.Output.data, "1\tt\tfunction\tfunction")
    r = p:eval([[Send({ Target = "t" })]])
    H.eq(r.Output.data, "Message added to outbox (Target t, Reference 2)")
    H.contains(p:eval([[Send({ Data = "no target" })]]).Error, "Target must be")
    H.contains(p:eval([[Send({ Target = "t", Bad = { 1 } })]]).Error, "field Bad is a table")
    H.contains(p:eval([[Send("str")]]).Error, "expected a table")
    H.contains(p:eval([[Send({ Target = "t", Data = print })]]).Error, "Data must be")
  end)

  test("msg.reply targets Reply-To or From with X-Reference", function()
    local p = H.proc()
    p:exec([[
      Handlers.add("Ask", function(msg) msg.reply({ Action = "Answer", Data = "42" }) end)
      Handlers.add("AskStr", function(msg) msg.reply("plain") end)]])
    local r = p:msg({ Action = "Ask", From = "asker", Tags = { { name = "Reference", value = "7" } } })
    local m = r.Messages[1]
    H.eq(m.Target, "asker")
    H.eq(m.Data, "42")
    H.eq(H.tag(m.Tags, "X-Reference"), "7")
    H.eq(H.tag(m.Tags, "Action"), "Answer")
    r = p:msg({ Action = "Ask", From = "asker", Tags = { { name = "Reply-To", value = "elsewhere" },
                                                        { name = "X-Origin", value = "origin" } } })
    H.eq(r.Messages[1].Target, "elsewhere")
    H.eq(H.tag(r.Messages[1].Tags, "X-Reference"), nil)
    H.eq(H.tag(r.Messages[1].Tags, "X-Origin"), "origin")
    r = p:msg({ Action = "AskStr", From = "asker" })
    H.eq(r.Messages[1].Data, "plain")
  end)

  test("msg.forward copies data and tags to a new target", function()
    local p = H.proc()
    p:exec([[Handlers.add("Fwd", function(msg) msg.forward("next-hop", { Extra = "e" }) end)]])
    local r = p:msg({ Action = "Fwd", From = "sender", Data = "body",
                      Tags = { { name = "Color", value = "red" }, { name = "Reference", value = "4" } } })
    local m = r.Messages[1]
    H.eq(m.Target, "next-hop")
    H.eq(m.Data, "body")
    H.eq(H.tag(m.Tags, "Action"), "Fwd")
    H.eq(H.tag(m.Tags, "Color"), "red")
    H.eq(H.tag(m.Tags, "Extra"), "e")
    H.eq(H.tag(m.Tags, "Reply-To"), "sender")
    H.eq(H.tag(m.Tags, "X-Origin"), "sender")
    H.eq(H.tag(m.Tags, "Reference"), "1", "a fresh Reference, not the original 4")
  end)

  test("Spawn emits a Type=Process item", function()
    local p = H.proc({ module = "my-module" })
    local r = p:eval([[Spawn("child-module", { Data = "Counter = 0", Name = "kid", ["On-Boot"] = "Data" })]])
    H.eq(r.Error, nil)
    H.eq(#r.Messages, 0)
    H.eq(#r.Spawns, 1)
    local s = r.Spawns[1]
    H.eq(s.Target, nil)
    H.eq(s.Data, "Counter = 0")
    H.eq(s.Anchor, "00000000000000000000000000000001")
    H.eq(names(s.Tags), "Data-Protocol=ao Variant=ao.TN.1 Type=Process From-Process=" .. p.id ..
      " From-Module=my-module Module=child-module Reference=1 Name=kid On-Boot=Data")
    r = p:eval([[Spawn({ Data = "x" })]])
    H.eq(H.tag(r.Spawns[1].Tags, "Module"), "my-module", "Spawn(msg) uses this process's module")
    H.contains(p:eval([[Spawn(nil)]]).Error, "module must be")
  end)

  test("Assign", function()
    local p = H.proc()
    local r = p:eval([[Assign({ Processes = { "p1", "p2" }, Message = "msg-id" }); ao.assign({ Processes = "p3", Message = "m2" })]])
    H.eq(r.Error, nil)
    H.same(r.Assignments, { { Processes = { "p1", "p2" }, Message = "msg-id" },
                            { Processes = { "p3" }, Message = "m2" } })
    H.contains(p:eval([[Assign({ Processes = {}, Message = "m" })]]).Error, "Processes")
    H.contains(p:eval([[Assign({ Processes = "p" })]]).Error, "Message")
    local json = H.json()
    H.contains(json.encode(r), '"Assignments":[{"Message":"msg-id","Processes":["p1","p2"]}')
  end)

  test("Cache writes appear in the result of that message only", function()
    local p = H.proc()
    local r = p:eval([[Cache{ balance = 10, owner = "me", info = { a = 1 } }; Cache.flag = true; Cache[5] = "five"]])
    H.eq(r.Error, nil)
    H.same(r.Cache, { balance = "10", owner = "me", info = '{"a":1}', flag = "true", ["5"] = "five" })
    r = p:eval([[return Cache.balance, Cache.owner]])
    H.eq(r.Output.data, "10\tme")
    H.same(r.Cache, {})
    r = p:eval([[Cache.owner = nil]])
    H.same(r.Cache, { owner = "" })
    H.eq(p:eval([[Cache.owner]]).Output.data, "")
    H.contains(p:eval([[Cache[{}] = 1]]).Error, "keys must be")
    H.contains(p:eval([[Cache.f = print]]).Error, "cannot store")
    H.contains(H.plain(p:eval([[tostring(Cache)]]).Output.data), 'balance = "10"')
  end)

  test("a failed message keeps its Cache writes but drops its outbox", function()
    local p = H.proc()
    local r = p:eval([[Cache.k = "v"; Send({ Target = "t" }); Spawn("m", {}); Assign({ Processes = "p", Message = "m" }); error("stop")]])
    H.contains(r.Error, "stop")
    H.same(r.Messages, {})
    H.same(r.Spawns, {})
    H.same(r.Assignments, {})
    H.same(r.Cache, { k = "v" })
  end)

  test("ao helpers: id, env, isTrusted, isAssignment", function()
    local p = H.proc({ tags = { { name = "Authority", value = "auth1,auth2" } } })
    local G = p:G()
    H.eq(G.ao.id, p.id)
    H.eq(G.ao.env.Process.Id, p.id)
    H.same(G.ao.authorities, { "auth1", "auth2" })
    H.eq(G.ao.isTrusted({ From = "a", Owner = "a" }), true)
    H.eq(G.ao.isTrusted({ From = "proc", Owner = "auth2" }), true)
    H.eq(G.ao.isTrusted({ From = "proc", Owner = "stranger" }), false)
    H.eq(G.ao.isAssignment({ Target = "other" }), true)
    H.eq(G.ao.isAssignment({ Target = p.id }), false)
  end)
end
