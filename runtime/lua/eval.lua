-- eval.lua: evaluating Lua source sent by the process owner (Action=Eval)
-- or carried by the spawn (On-Boot=Data).
--
-- The source is first compiled as `return <source>` (so `1 + 1` gives 2);
-- when that does not compile it is compiled as a chunk of statements. Only
-- text chunks are accepted, and they run with the process globals as their
-- environment. Whatever the code returns is printed (tables pretty printed
-- by the `print` the library installs); a single nil is not printed.

local load, type, select, error = load, type, select, error
local pack, unpack = table.pack, table.unpack

local eval = {}

-- The process globals: the environment this module was loaded in.
local GLOBALS = _ENV

-- eval.compile(source[, chunkname]) -> function | nil, error
function eval.compile(source, chunkname)
  if type(source) ~= "string" then
    return nil, "code must be a string, not a " .. type(source)
  end
  chunkname = chunkname or "=eval"
  local fn = load("return " .. source, chunkname, "t", GLOBALS)
  if fn then return fn end
  local err
  fn, err = load(source, chunkname, "t", GLOBALS)
  if not fn then return nil, err end
  return fn
end

-- eval.run(source[, chunkname]): compile, run, print the results.
-- Compile and run errors are raised (as strings, without extra position).
function eval.run(source, chunkname)
  local fn, err = eval.compile(source, chunkname)
  if not fn then error(err, 0) end
  local results = pack(fn())
  if results.n == 0 or (results.n == 1 and results[1] == nil) then return end
  GLOBALS.print(unpack(results, 1, results.n))
end

return eval
