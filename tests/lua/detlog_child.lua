-- detlog_child.lua: runs the determinism log in this interpreter and prints
-- its results (used by test_determinism through a separate lua5.4 process).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local H = require("helper")
H.root = arg[1] or (dir .. "/../..")
local lines = require("detlog").run(H, { rawpairs = arg[2] == "raw" })
io.write(table.concat(lines, "\n"), "\n")
