-- process.handle: normalisation, boot, Owner/Name, output shape, globals.
return function(test, H)
  test("instances are isolated", function()
    local a, b = H.instance(), H.instance()
    a.G.Shared = 1
    a.G.Inbox[1] = "x"
    H.eq(b.G.Shared, nil)
    H.eq(#b.G.Inbox, 0)
    H.ok(a.G.Handlers ~= b.G.Handlers)
    H.eq(a.G.io, nil)
    H.eq(a.G.os.time ~= nil, true)
    H.eq(a.G.os.execute, nil)
    H.eq(a.G.debug, nil)
    H.eq(a.G.string.dump, nil)
  end)

  test("globals installed", function()
    local G = H.instance().G
    for _, name in ipairs({ "Send", "Spawn", "Receive", "Assign", "print", "Prompt",
                            "Inbox", "Errors", "Name", "Handlers", "Utils", "Dump",
                            "Colors", "Cache", "json", "ao" }) do
      H.ok(G[name] ~= nil, "global " .. name .. " missing")
    end
    H.eq(G.Name, "aos")
    H.eq(G.Owner, nil)
    H.same(G.Handlers.names(), { "_eval", "_default" })
  end)

  test("the library defines only the documented globals", function()
    local inst = H.instance()
    H.proc() -- a booted process too
    local provided = {}
    for _, k in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal",
                         "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable",
                         "tonumber", "tostring", "type", "xpcall", "_VERSION", "string", "table",
                         "math", "utf8", "coroutine", "load", "_G", "require" }) do
      provided[k] = true
    end
    local p = H.proc()
    p:msg({ Action = "X" })
    p:eval("1")
    for _, G in ipairs({ inst.G, p:G() }) do
      local extra = {}
      for k in pairs(G) do if not provided[k] then extra[#extra + 1] = k end end
      table.sort(extra)
      local want = "Assign Cache Colors Dump Errors Handlers Inbox Name Prompt Receive Send Spawn Utils ao json os print"
      if G == p:G() then want = "Assign Cache Colors Dump Errors Handlers Inbox Name Owner Prompt Receive Send Spawn Utils ao json os print" end
      H.eq(table.concat(extra, " "), want)
    end
  end)

  test("tag normalisation", function()
    local inst = H.instance()
    local msg = inst.process.normalize({
      Id = "host-id", Owner = "signer", Timestamp = "1700000000123",
      Tags = {
        { name = "Data-Protocol", value = "ao" }, { name = "Variant", value = "ao.TN.1" },
        { name = "Type", value = "Message" }, { name = "From-Process", value = "proc-x" },
        { name = "From-Module", value = "mod" }, { name = "Owner", value = "fake-owner" },
        { name = "Anchor", value = "a" }, { name = "Target", value = "t" },
        { name = "Data", value = "d" }, { name = "Tags", value = "t" },
        { name = "Read-Only", value = "true" }, { name = "From", value = "fake" },
        { name = "Action", value = "Ping" }, { name = "Action", value = "Second" },
        { name = "Id", value = "tag-id" }, { name = "Quantity", value = "10" },
      },
      Data = "payload",
    })
    H.eq(msg.Action, "Ping", "first occurrence wins")
    H.eq(msg.Quantity, "10")
    H.eq(msg.Id, "host-id", "host fields are not overwritten")
    H.eq(msg.Owner, "signer")
    H.eq(msg.From, "proc-x", "From = From-Process when not given")
    for _, n in ipairs({ "Data-Protocol", "Variant", "Type", "From-Module", "Anchor",
                         "Target", "Read-Only" }) do
      H.eq(msg[n], nil, n .. " must not be extracted")
    end
    H.eq(msg.Data, "payload")
    H.eq(msg.Tags.Action, "Ping")
    H.eq(msg.Tags.Type, "Message")
    H.eq(msg.Tags["From-Process"], "proc-x")
    H.eq(#msg.TagArray, 16)
    H.eq(msg.TagArray[14].value, "Second")
    H.eq(msg.Timestamp, 1700000000123)
    H.eq(math.type(msg.Timestamp), "integer")
    H.eq(type(msg.reply), "function")
    H.eq(type(msg.forward), "function")
  end)

  test("From defaults to Owner; Tags given as a map", function()
    local inst = H.instance()
    local msg = inst.process.normalize({ Owner = "w", Tags = { Action = "A", B = "b" } })
    H.eq(msg.From, "w")
    H.eq(msg.Action, "A")
    H.same(msg.TagArray, { { name = "Action", value = "A" }, { name = "B", value = "b" } })
    H.eq(msg.Data, "")
  end)

  test("application/json data is decoded, raw kept", function()
    local inst = H.instance()
    local msg = inst.process.normalize({
      Tags = { { name = "Content-Type", value = "application/json; charset=utf-8" } },
      Data = '{"a":[1,2],"b":"x"}' })
    H.same(msg.Data, { a = { 1, 2 }, b = "x" })
    H.eq(msg.RawData, '{"a":[1,2],"b":"x"}')
    local bad = inst.process.normalize({
      Tags = { { name = "Content-Type", value = "application/json" } }, Data = "{oops" })
    H.eq(bad.Data, "{oops")
    H.eq(bad.RawData, nil)
    local plain = inst.process.normalize({ Tags = {}, Data = '{"a":1}' })
    H.eq(plain.Data, '{"a":1}')
  end)

  test("boot: Owner from the spawn's Owner, Name default", function()
    local p = H.proc()
    local G = p:G()
    H.eq(G.Owner, H.OWNER)
    H.eq(G.Name, "aos")
    H.eq(p.bootResult.Error, nil)
    H.eq(#G.Inbox, 0, "the spawn is not put in the Inbox")
    H.eq(p.bootResult.Output.print, true)
  end)

  test("boot: Owner from From-Process, Name from tag", function()
    local p = H.proc({ tags = { { name = "From-Process", value = "parent-pid" },
                                { name = "Name", value = "counter" } } })
    H.eq(p:G().Owner, "parent-pid")
    H.eq(p:G().Name, "counter")
    H.contains(p.bootResult.Output.prompt, "counter")
  end)

  test("boot: On-Boot=Data evaluates the spawn data", function()
    local p = H.proc({ tags = { { name = "On-Boot", value = "Data" } },
                       data = "Counter = 41\nHandlers.add('Inc', function(m) Counter = Counter + 1; print(Counter) end)\nprint('booted')\nreturn Counter" })
    H.eq(p.bootResult.Error, nil)
    H.eq(p.bootResult.Output.data, "booted\n41")
    local r = p:msg({ Action = "Inc", From = "someone" })
    H.eq(r.Output.data, "42")
    H.eq(p:G().Counter, 42)
  end)

  test("boot: On-Boot code errors give an Error and keep the process", function()
    local p = H.proc({ tags = { { name = "On-Boot", value = "Data" } }, data = "error('bad boot')" })
    H.contains(p.bootResult.Error, "bad boot")
    H.contains(p.bootResult.Error, "_boot")
    H.eq(p:eval("1 + 1").Output.data, "2")
  end)

  test("without On-Boot the spawn data is not run", function()
    local p = H.proc({ data = "Ran = true" })
    H.eq(p:G().Ran, nil)
  end)

  test("first message that is not the spawn still sets Owner", function()
    local p = H.proc({ noboot = true })
    local r = p:msg({ Action = "Hello", From = "first-sender" })
    H.eq(p:G().Owner, H.OWNER, "Owner comes from env.Process")
    H.eq(#p:G().Inbox, 1)
    H.eq(r.Error, nil)
  end)

  test("output shape of an ordinary message", function()
    local p = H.proc()
    local r = p:msg({ Action = "Nothing", From = "x" })
    H.eq(r.Output.print, true)
    H.eq(type(r.Output.data), "string")
    H.eq(H.plain(r.Output.prompt), "aos@vmnode[Inbox:1]> ")
    H.same(r.Messages, {})
    H.same(r.Spawns, {})
    H.same(r.Assignments, {})
    H.same(r.Cache, {})
    H.eq(r.Error, nil)
    local json = H.json()
    local s = json.encode(r)
    H.contains(s, '"Messages":[]')
    H.contains(s, '"Cache":{}')
  end)

  test("os.time is the message timestamp; print collects lines", function()
    local p = H.proc()
    p:exec('Handlers.add("T", function(m) print(os.time(), "x", { 1 }, nil, true) end)')
    local r = p:msg({ Action = "T", Timestamp = 1711111111111 })
    H.eq(r.Output.data, "1711111111111\tx\t{ 1 }\tnil\ttrue")
    H.eq(p:G().os.time(), 1711111111111)
  end)

  test("handle_json takes and gives JSON", function()
    local inst = H.instance()
    local env = '{"Process":{"Id":"P","Owner":"O","Tags":[]},"Module":{"Id":"M","Owner":"MO","Tags":[]}}'
    local out = inst.process.handle_json('{"Id":"P","Owner":"O","Target":"P","Tags":[],"Data":"","Timestamp":5}', env)
    local r = inst.json.decode(out)
    H.eq(r.Error, nil)
    out = inst.process.handle_json('{"Id":"m1","Owner":"O","Target":"P","Tags":[{"name":"Action","value":"Eval"}],"Data":"1 + 1","Timestamp":6}', env)
    H.contains(out, '"Output":{"data":"2","prompt":')
    out = inst.process.handle_json("{bad", env)
    H.contains(out, '"Error":"process.handle_json: json.decode')
  end)

  test("apply_json takes one payload", function()
    local inst = H.instance()
    local env = '{"Process":{"Id":"P","Owner":"O","Tags":[]},"Module":{"Id":"M","Owner":"MO","Tags":[]}}'
    inst.process.apply_json('{"msg":{"Id":"P","Owner":"O","Target":"P","Tags":[],"Timestamp":5},"env":' .. env .. '}')
    local out = inst.process.apply_json('{"msg":{"Id":"m1","Owner":"O","Target":"P","Tags":[{"name":"Action","value":"Eval"}],"Data":"os.time()","Timestamp":6},"env":' .. env .. '}')
    H.contains(out, '"Output":{"data":"6","prompt":')
    H.contains(inst.process.apply_json("[]"), 'expected {\\"msg\\"')
    H.contains(inst.process.apply_json("{"), '"Error":"process.apply_json: json.decode')
  end)

  test("apply_json keeps env: later payloads may leave it out", function()
    local inst = H.instance()
    local env = '{"Process":{"Id":"P","Owner":"O","Tags":[{"name":"Name","value":"kept"}]},"Module":{"Id":"M","Owner":"MO","Tags":[]}}'
    inst.process.apply_json('{"msg":{"Id":"P","Owner":"O","Target":"P","Tags":[],"Timestamp":5},"env":' .. env .. '}')
    local out = inst.process.apply_json('{"msg":{"Id":"m1","Owner":"O","Target":"P","Tags":[{"name":"Action","value":"Eval"}],"Data":"ao.id .. \\" \\" .. Name","Timestamp":6}}')
    H.contains(out, '"data":"P kept"')
  end)

  test("apply_json decodes Data-Base64 (data that is not UTF-8)", function()
    local inst = H.instance()
    local env = '{"Process":{"Id":"P","Owner":"O","Tags":[]},"Module":{"Id":"M","Owner":"MO","Tags":[]}}'
    inst.process.apply_json('{"msg":{"Id":"P","Owner":"O","Target":"P","Tags":[],"Timestamp":5},"env":' .. env .. '}')
    inst.process.apply_json('{"msg":{"Id":"m1","Owner":"O","Target":"P","Tags":[{"name":"Action","value":"Eval"}],"Data":"Handlers.add(\\"Bin\\", function(m) print(#m.Data .. \\":\\" .. m.Data:byte(1) .. \\",\\" .. m.Data:byte(3)) end)","Timestamp":6}}')
    -- bytes ff 00 fe 41 as base64url: _wD-QQ
    local out = inst.process.apply_json('{"msg":{"Id":"m2","Owner":"O","Target":"P","Tags":[{"name":"Action","value":"Bin"}],"Data-Base64":"_wD-QQ","Timestamp":7}}')
    H.contains(out, '"data":"4:255,254"')
  end)

  test("b64decode: standard and URL alphabets, padding optional, bad input nil", function()
    local p = H.instance().process
    H.eq(p.b64decode("aGVsbG8="), "hello")
    H.eq(p.b64decode("aGVsbG8"), "hello")
    H.eq(p.b64decode("_-8"), "\255\239")
    H.eq(p.b64decode("/+8="), "\255\239")
    H.eq(p.b64decode(""), "")
    H.eq(p.b64decode("a$b"), nil)
  end)

  test("os.time with a date table goes to the host's os.time", function()
    local inst = H.instance()
    H.eq(inst.G.os.time({ year = 2024 }), 0, "no host os.time: the timestamp")
    local G2
    do
      local i2 = H.instance({ os_time = function(t) return t.year * 10 end })
      G2 = i2.G
    end
    H.eq(G2.os.time({ year = 2024 }), 20240)
    H.eq(G2.os.time(), 0)
  end)

  test("seedRandom = false leaves math.random to the host", function()
    local p = H.proc()
    p:exec([[require("process").seedRandom = false; math.randomseed(7); Handlers.add("R", function() print(math.random(1000000)) end)]])
    local r1 = p:msg({ Action = "R" })
    p:exec("math.randomseed(7)")
    local r2 = p:msg({ Action = "R", Id = "different" })
    H.eq(r1.Output.data, r2.Output.data)
  end)

  test("require accepts aos-style names", function()
    local p = H.proc()
    local r = p:eval('local j = require(".json"); return j.encode({b=1,a=2})')
    H.eq(r.Output.data, '{"a":2,"b":1}')
  end)
end
