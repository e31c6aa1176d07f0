-- Bad code: runaway recursion, errors with odd values, an instruction budget
-- enforced by a count hook (simulating the C host), all end in an Error for
-- that message and leave the process usable.
return function(test, H)
  test("deep recursion is an Error", function()
    local p = H.proc()
    local r = p:eval("local function f(n) return 1 + f(n + 1) end; return f(1)")
    H.contains(r.Error, "stack overflow")
    H.eq(p:eval("1 + 1").Output.data, "2")
  end)

  test("C stack overflow is an Error", function()
    local p = H.proc()
    local r = p:eval([[local function f() return pcall(string.gsub, "a", "a", f) end; return select(2, f())]])
    H.eq(r.Error, nil, "pcall inside user code keeps the error to itself")
    r = p:eval([[local t = setmetatable({}, {}); getmetatable(t).__index = function(s, k) return s[k] end; return t.x]])
    H.ok(r.Error, "expected an Error")
    H.eq(p:eval("2 + 2").Output.data, "4")
  end)

  test("odd error values", function()
    local p = H.proc()
    H.contains(p:eval("error()").Error, 'handler "_eval": nil')
    H.contains(p:eval("error(42)").Error, "42")
    H.contains(p:eval("error(setmetatable({}, { __tostring = function() return 'custom' end }))").Error, "custom")
  end)

  -- A host-like budget: the count hook raises once the budget is spent.
  -- Hooks are per thread; coroutines created while it is set inherit it.
  local function with_budget(limit, persistent, fn, count)
    local ticks, fired = 0, false
    debug.sethook(function()
      -- only library and process code is metered, not the test harness
      local src = debug.getinfo(2, "S").source
      if src:sub(1, 1) == "@" and not src:find("runtime/lua/", 1, true) then return end
      ticks = ticks + 1
      if ticks > limit and (persistent or not fired) then
        fired = true
        error("instruction budget exhausted", 0)
      end
    end, "", count or 1000)
    local ok, res = pcall(fn)
    debug.sethook()
    return ok, res, fired
  end

  test("an infinite loop ends in an Error when the budget runs out", function()
    local p = H.proc()
    p:exec([[Handlers.add("Spin", function() print("spinning"); while true do end end)]])
    local ok, r, fired = with_budget(200, false, function() return p:msg({ Action = "Spin" }) end)
    H.ok(ok, "handle returned")
    H.ok(fired, "budget hook fired")
    H.contains(r.Error, 'handler "Spin": instruction budget exhausted')
    H.eq(r.Output.data, "spinning")
    H.eq(p:eval("1 + 1").Output.data, "2")
  end)

  test("a budget that keeps failing makes handle raise; the next message works", function()
    local p = H.proc()
    p:exec([[Handlers.add("Spin", function() while true do end end)]])
    -- the hook fires on every instruction once the budget is spent, so the
    -- library's own code after the handler fails too
    local ok, err = with_budget(50000, true, function() return p:msg({ Action = "Spin" }) end, 1)
    H.eq(ok, false)
    H.contains(tostring(err), "instruction budget exhausted")
    local r = p:eval("1 + 1")
    H.eq(r.Error, nil)
    H.eq(r.Output.data, "2")
    H.same(r.Messages, {})
  end)

  test("a waiter whose coroutine died is dropped, not matched", function()
    local p = H.proc()
    p:exec([[Handlers.add("W", function() Receive({ Action = "Go" }) end)]])
    p:msg({ Action = "W" })
    -- simulate the host killing the suspended coroutine
    p:exec([[for _, h in ipairs(Handlers.list) do if h.co then coroutine.close(h.co) end end]])
    p:msg({ Action = "Go" })
    H.eq(#p:G().Inbox, 1, "the message went on to _default")
    H.same(p:G().Handlers.names(), { "_eval", "_default", "W" })
  end)

  test("a big string is just data; the memory cap is the host's", function()
    local p = H.proc()
    local r = p:eval("#string.rep('x', 1 << 20)")
    H.eq(r.Output.data, tostring(1 << 20))
  end)
end
