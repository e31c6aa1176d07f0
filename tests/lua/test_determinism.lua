-- Determinism: the same log gives byte-identical results in fresh
-- instances, in this interpreter and in separate interpreters (whose
-- string-hash seeds and addresses differ).
return function(test, H)
  local detlog = dofile(H.dir .. "/detlog.lua")

  test("same log, two fresh instances, identical results (with raw pairs)", function()
    local one = detlog.run(H, { rawpairs = true })
    local two = detlog.run(H, { rawpairs = true })
    H.eq(#one, #two)
    H.ok(#one >= 12, "the log produced results")
    for i = 1, #one do H.eq(two[i], one[i], "result " .. i) end
  end)

  test("the log exercises what it claims", function()
    local all = table.concat(detlog.run(H, { rawpairs = true }), "\n")
    H.contains(all, '"Cache":{"a":"1","b":"2","last-')
    H.contains(all, '"Error":"handler \\"Fail\\": {')
    H.contains(all, "key1")
    H.contains(all, '{\\"counter\\":5')
  end)

  test("separate interpreters give the same bytes", function()
    local here = table.concat(detlog.run(H), "\n") .. "\n"
    local cmd = string.format('%s "%s/detlog_child.lua" "%s"', H.lua, H.dir, H.root)
    local outs = {}
    for i = 1, 3 do
      local p = assert(io.popen(cmd))
      outs[i] = p:read("a")
      local ok = p:close()
      H.ok(ok, "child interpreter failed")
    end
    for i = 1, 3 do H.eq(outs[i], here, "interpreter run " .. i) end
  end)

  test("random numbers depend on the message, not on the run", function()
    local p1, p2 = H.proc(), H.proc()
    local code = [[Handlers.add("R", function() print(math.random(1, 1 << 40)) end)]]
    p1:exec(code); p2:exec(code)
    local r1 = p1:msg({ Action = "R", Id = "same-id" })
    local r2 = p2:msg({ Action = "R", Id = "same-id" })
    H.eq(r1.Output.data, r2.Output.data)
    local r3 = p1:msg({ Action = "R", Id = "other-id" })
    H.ok(r3.Output.data ~= r1.Output.data, "another message id gives another sequence")
    local seed = p1.inst.process._seed({ ["Block-Height"] = 1, Owner = "o", Module = "m", Id = "i" }, {})
    H.eq(seed, p1.inst.process.hash("1omi"))
    H.eq(p1.inst.process.hash(""), 0x811C9DC5)
    H.eq(p1.inst.process.hash("a"), 0xE40C292C)
  end)
end
