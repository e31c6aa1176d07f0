-- JSON module: encoding (sorted keys), decoding, round trips, errors.
return function(test, H)
  local json = H.instance().json

  test("encode scalars", function()
    H.eq(json.encode(nil), "null")
    H.eq(json.encode(json.null), "null")
    H.eq(json.encode(true), "true")
    H.eq(json.encode(false), "false")
    H.eq(json.encode(0), "0")
    H.eq(json.encode(-42), "-42")
    H.eq(json.encode(math.maxinteger), "9223372036854775807")
    H.eq(json.encode(1.5), "1.5")
    H.eq(json.encode(2.0), "2")
    H.eq(json.encode(0.1), "0.1")
    H.eq(json.encode(1e300), "1e+300")
    H.eq(json.encode(1 / 3), "0.33333333333333331")
    H.eq(json.encode("hi"), '"hi"')
  end)

  test("encode string escapes", function()
    H.eq(json.encode('a"b\\c'), '"a\\"b\\\\c"')
    H.eq(json.encode("l1\nl2\r\t\b\f"), '"l1\\nl2\\r\\t\\b\\f"')
    H.eq(json.encode("\0\1\31"), '"\\u0000\\u0001\\u001f"')
    H.eq(json.encode("héllo/€"), '"héllo/€"')
  end)

  test("encode sorts object keys whatever the insertion order", function()
    local a, b = {}, {}
    local names = {}
    for i = 1, 50 do names[i] = "key" .. i end
    for i = 1, 50 do a[names[i]] = i end
    for i = 50, 1, -1 do b[names[i]] = i end
    local ea, eb = json.encode(a), json.encode(b)
    H.eq(ea, eb)
    H.ok(ea:find('^{"key1":1,"key10":10,"key11":11,'), ea)
    H.eq(json.encode({ b = 1, a = { d = 2, c = 3 }, ["A"] = 0 }),
         '{"A":0,"a":{"c":3,"d":2},"b":1}')
  end)

  test("arrays, objects, empties and markers", function()
    H.eq(json.encode({ 1, 2, "x" }), '[1,2,"x"]')
    H.eq(json.encode({}), "[]")
    H.eq(json.encode(json.object({})), "{}")
    H.eq(json.encode(json.array({})), "[]")
    H.eq(json.encode({ [1] = "a", [3] = "c" }), '{"1":"a","3":"c"}')
    H.eq(json.encode({ [1] = "a", x = 1 }), '{"1":"a","x":1}')
    H.eq(json.encode({ [2.5] = 1 }), '{"2.5":1}')
    H.eq(json.encode({ { a = {} }, json.null, false }), '[{"a":[]},null,false]')
  end)

  test("encode errors", function()
    H.raises(function() json.encode(0 / 0) end, "cannot encode number")
    H.raises(function() json.encode(math.huge) end, "cannot encode number")
    H.raises(function() json.encode(print) end, "cannot encode a function")
    local t = {}
    t.self = t
    H.raises(function() json.encode(t) end, "circular")
    H.raises(function() json.encode({ [1] = 1, ["1"] = 2, x = 3 }) end, "duplicate key")
    H.raises(function() json.encode({ [true] = 1 }) end, "key of type boolean")
    H.eq(json.encode({ a = 1, f = print }, { skip_functions = true }), '{"a":1}')
  end)

  test("decode values", function()
    H.eq(json.decode("true"), true)
    H.eq(json.decode(" false "), false)
    H.eq(json.decode("null"), nil)
    H.eq(json.decode("null", { null = json.null }), json.null)
    H.eq(json.decode("12"), 12)
    H.eq(math.type(json.decode("12")), "integer")
    H.eq(json.decode("-0.5"), -0.5)
    H.eq(json.decode("1e3"), 1000.0)
    H.eq(json.decode("1.5E-2"), 0.015)
    H.eq(math.type(json.decode("123456789012345678901234")), "float")
    H.eq(json.decode('"a\\"b\\\\c\\/d\\n"'), 'a"b\\c/d\n')
    H.eq(json.decode('"\\u00e9\\u20ac"'), "é€")
    H.eq(json.decode('"\\ud83d\\ude00"'), "😀")
    H.eq(json.decode('"raw é"'), "raw é")
    H.same(json.decode('[1, [2, {"a": [3]}], "x"]'), { 1, { 2, { a = { 3 } } }, "x" })
    H.same(json.decode('{"a": {"b": null, "c": [true]}}'), { a = { c = { true } } })
  end)

  test("decode errors", function()
    for _, bad in ipairs({ "", "[", "[1,]", "{", '{"a" 1}', '{"a":1,}', "01",
                           "1.", ".5", "-", "tru", '"abc', '"a\\x"', "[1] x",
                           '{1:2}', '"\\u12"', "nul", '"tab\there"' }) do
      local ok = pcall(json.decode, bad)
      H.eq(ok, false, "decode " .. string.format("%q", bad) .. " should fail")
    end
    H.raises(function() json.decode('{"a": tru}') end, "line 1 column 7")
    H.raises(function() json.decode(12) end, "expected a string")
    local v, err = json.trydecode("[")
    H.eq(v, nil)
    H.contains(err, "json.decode")
  end)

  test("round trips are byte-identical", function()
    local docs = {
      '{"Messages":[],"Output":{"data":"2","prompt":"> "},"n":-1.25,"z":[[],{}]}',
      '[1,"two",{"three":3,"x":[true,false,null]},"\\u0001\\n"]',
      '{"":"","a":{"b":{"c":{"d":"deep"}}},"unicode":"ü€😀"}',
    }
    for _, d in ipairs(docs) do
      H.eq(json.encode(json.decode(d)), d)
    end
    local v = { list = { 1, 2, 3 }, map = { k = "v", n = 7 }, empty = json.object({}),
                arr = json.array({}), s = "q\"uote" }
    local s = json.encode(v)
    H.eq(json.encode(json.decode(s)), s)
    H.same(json.decode(s).map, v.map)
  end)

  test("deep nesting is bounded", function()
    H.raises(function() json.decode(string.rep("[", 500) .. string.rep("]", 500)) end,
             "too deep")
    local t = {}
    local cur = t
    for _ = 1, 300 do cur.x = {}; cur = cur.x end
    H.raises(function() json.encode(t) end, "too deep")
  end)
end
