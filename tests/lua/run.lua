-- run.lua: runs the Lua library tests.
--
--   lua5.4 tests/lua/run.lua [filter]      (from the repository root)
--
-- Each tests/lua/test_*.lua file returns function(test, H) that registers
-- tests with test(name, fn). Prints one line per failure (and per test with
-- -v), then "lua: N passed, N failed"; exits non-zero on any failure.

local script = arg and arg[0] or "tests/lua/run.lua"
local dir = script:match("^(.*)/[^/]*$") or "."
local root = os.getenv("VMNODE_ROOT") or (dir .. "/../..")

package.path = root .. "/runtime/lua/?.lua;" .. dir .. "/?.lua;" .. package.path

local H = require("helper")
H.root = root
H.dir = dir
H.lua = os.getenv("LUA") or "lua5.4"

local verbose, filter = false, nil
for _, a in ipairs(arg or {}) do
  if a == "-v" then verbose = true else filter = a end
end

local files = {}
local p = io.popen('ls "' .. dir .. '"/test_*.lua 2>/dev/null')
if p then
  for line in p:lines() do files[#files + 1] = line end
  p:close()
end
table.sort(files)

local passed, failed = 0, 0
local failures = {}
for _, file in ipairs(files) do
  local short = file:match("([^/]+)%.lua$")
  local chunk, err = loadfile(file)
  local tests = {}
  if not chunk then
    failed = failed + 1
    failures[#failures + 1] = short .. ": load error: " .. tostring(err)
  else
    local ok, reg = pcall(chunk)
    if not ok or type(reg) ~= "function" then
      failed = failed + 1
      failures[#failures + 1] = short .. ": does not return a function: " .. tostring(reg)
    else
      reg(function(name, fn) tests[#tests + 1] = { name = name, fn = fn } end, H)
    end
  end
  for _, t in ipairs(tests) do
    local full = short .. ": " .. t.name
    if not filter or full:find(filter, 1, true) then
      local ok, e = xpcall(t.fn, debug.traceback)
      if ok then
        passed = passed + 1
        if verbose then print("ok   " .. full) end
      else
        failed = failed + 1
        failures[#failures + 1] = full .. "\n    " .. tostring(e):gsub("\n", "\n    ")
        print("FAIL " .. full)
      end
    end
  end
end

for _, f in ipairs(failures) do print("--- " .. f) end
print(string.format("lua: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
