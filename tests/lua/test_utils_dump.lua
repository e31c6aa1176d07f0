-- utils (key order, functional helpers, pattern matching) and Dump.
return function(test, H)
  local inst = H.instance()
  local utils = inst.loaded.utils
  local Dump = inst.G.Dump

  test("sortedKeys orders mixed key types", function()
    local t = { b = 1, a = 2, [3] = 3, [1] = 4, [2.5] = 5, [true] = 6, [false] = 7, Z = 8 }
    H.same(utils.sortedKeys(t), { 1, 2.5, 3, "Z", "a", "b", false, true })
  end)

  test("spairs, keys and values follow sorted order", function()
    local t = { c = 3, a = 1, b = 2 }
    local seen = {}
    for k, v in utils.spairs(t) do seen[#seen + 1] = k .. v end
    H.same(seen, { "a1", "b2", "c3" })
    H.same(utils.keys(t), { "a", "b", "c" })
    H.same(utils.values(t), { 1, 2, 3 })
  end)

  test("functional helpers", function()
    local double = function(x) return x * 2 end
    H.same(utils.map(double, { 1, 2, 3 }), { 2, 4, 6 })
    H.same(utils.map(double)({ 4 }), { 8 })
    H.same(utils.filter(function(x) return x % 2 == 1 end, { 1, 2, 3, 4, 5 }), { 1, 3, 5 })
    H.eq(utils.reduce(function(a, x) return a + x end, 0, { 1, 2, 3, 4 }), 10)
    H.eq(utils.reduce(function(a, x) return a .. x end)("")({ "a", "b" }), "ab")
    H.eq(utils.find(function(x) return x > 2 end, { 1, 2, 3, 4 }), 3)
    H.eq(utils.includes(2, { 1, 2 }), true)
    H.eq(utils.includes(9)({ 1, 2 }), false)
    H.same(utils.concat({ 1 }, { 2, 3 }), { 1, 2, 3 })
    H.same(utils.reverse({ 1, 2, 3 }), { 3, 2, 1 })
    H.eq(utils.prop("a", { a = 5 }), 5)
    H.eq(utils.propEq("a", 5)({ a = 5 }), true)
    H.eq(utils.compose(function(x) return x + 1 end, double)(5), 11)
    H.eq(utils.isArray({ 1, 2 }), true)
    H.eq(utils.isArray({ 1, nil, 3 }), false)
    H.eq(utils.isArray({ a = 1 }), false)
    H.eq(utils.tagValue({ { name = "A", value = "1" }, { name = "A", value = "2" } }, "A"), "1")
    H.eq(utils.tagValue({ A = "x" }, "A"), "x")
  end)

  test("matchesPattern kinds", function()
    local mp = utils.matchesPattern
    H.eq(mp("_", nil, {}), true)
    H.eq(mp("Ping", "Ping", {}), true)
    H.eq(mp("Ping", "Pong", {}), false)
    H.eq(mp("Ping", nil, {}), false)
    H.eq(mp("^Pi", "Ping", {}), true)
    H.eq(mp("^Pi", "APing", {}), false)
    H.eq(mp("%d+", "abc123", {}), true)
    H.eq(mp("[", "[", {}), true)      -- equal strings match before pattern use
    H.eq(mp("[x", "abc", {}), false)  -- malformed Lua pattern: no match, no error
    H.eq(mp("abc-def", "abc-def", {}), true)
    H.eq(mp("abc-def", "abdef", {}), false) -- "-" alone is literal (ids)
    H.eq(mp("42", 42, {}), true)
    H.eq(mp(function(v) return v == "x" end, "x", {}), true)
    H.eq(mp(function(v, m) return m.k == 1 end, nil, { k = 1 }), true)
    H.eq(mp({ "a", "b" }, "b", {}), true)
    H.eq(mp({ "a", "^c" }, "cd", {}), true)
    H.eq(mp({ "a", "b" }, "c", {}), false)
  end)

  test("matchesSpec kinds", function()
    local ms = utils.matchesSpec
    local msg = { Action = "Ping", From = "abc", Quantity = "10" }
    H.eq(ms(msg, "Ping"), true)
    H.eq(ms(msg, "Pong"), false)
    H.eq(ms(msg, function(m) return m.From == "abc" and "continue" end), "continue")
    H.eq(ms(msg, { Action = "Ping", From = "_" }), true)
    H.eq(ms(msg, { Action = "Ping", Missing = "_" }), true)
    H.eq(ms(msg, { Action = "Ping", Missing = "x" }), false)
    H.eq(ms(msg, { Quantity = "%d+", Action = { "Pong", "Ping" } }), true)
    H.eq(ms(msg, { Quantity = function(q) return tonumber(q) > 50 end }), false)
    H.eq(ms(msg, {}), true)
  end)

  test("Dump layout", function()
    local v = { name = "x", list = { 1, 2, 3 }, nested = { ok = true, n = 1.5 },
                ["with space"] = "q\"s\n", [10] = "ten", ["end"] = 0, empty = {} }
    local want = table.concat({
      "{",
      '  [10] = "ten",',
      "  empty = {},",
      '  ["end"] = 0,',
      "  list = { 1, 2, 3 },",
      '  name = "x",',
      "  nested = { n = 1.5, ok = true },",
      '  ["with space"] = "q\\"s\\n"',
      "}",
    }, "\n")
    H.eq(Dump(v), want)
    H.eq(Dump({ 1, 2, { 3 } }), "{\n  1,\n  2,\n  { 3 }\n}")
    H.eq(Dump({}), "{}")
    H.eq(Dump("s"), '"s"')
    H.eq(Dump(7), "7")
    H.eq(Dump(nil), "nil")
    H.eq(Dump({ f = print, c = coroutine.create(print) }), "{ c = <thread>, f = <function> }")
  end)

  test("Dump is the same whatever the insertion order", function()
    local a, b = {}, {}
    for i = 1, 40 do a["k" .. i] = { i, tostring(i) } end
    for i = 40, 1, -1 do b["k" .. i] = { i, tostring(i) } end
    H.eq(Dump(a), Dump(b))
  end)

  test("Dump marks cycles, respects depth and __tostring", function()
    local t = { a = 1 }
    t.me = t
    H.eq(Dump(t), "{\n  a = 1,\n  me = <cycle>\n}")
    local shared = { 1 }
    H.eq(Dump({ x = shared, y = shared }), "{\n  x = { 1 },\n  y = { 1 }\n}")
    local deep = { { { { 1 } } } }
    H.eq(Dump(deep, { depth = 2 }), "{\n  {\n    {...}\n  }\n}")
    local obj = setmetatable({}, { __tostring = function() return "OBJ" end })
    H.eq(Dump({ o = obj }), "{ o = OBJ }")
  end)
end
