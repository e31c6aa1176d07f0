/* fuzz_lua_host.c - differential fuzzing of the Lua workers' C JSON codec
 * (src/vm/lua_host.c): any input the C decoder accepts is encoded by the C
 * encoder and by the library's own json.lua; the two must give the same
 * bytes (or both refuse). A difference aborts. Runs one in-process engine
 * with the embedded library, as a worker has it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/worker.h"
#include "vm/vm.h"

extern const sbx_module vm_lua_runtime[];
extern const unsigned vm_lua_runtime_count;

static const char PRELOAD[] =
    "local H = vmnode_host\n"
    "local json = require('json')\n"
    "local AMT, OMT = getmetatable(json.array()), getmetatable(json.object())\n"
    "FUZZ = function(s)\n"
    "  local ok, v = pcall(H.decode, s, AMT, OMT)\n"
    "  if not ok then return 'refused' end\n"
    "  local ok1, a = pcall(json.encode, v, {skip_functions = true})\n"
    "  local ok2, b = pcall(H.encode, v, json.null)\n"
    "  if ok1 ~= ok2 or (ok1 and a ~= b) then\n"
    "    return 'DIFFER lua=' .. tostring(a) .. ' c=' .. tostring(b)\n"
    "  end\n"
    "  return 'same'\n"
    "end\n";

static sbx_lua *g_L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_L) {
    sbx_lua_cfg cfg = {.modules = vm_lua_runtime,
                       .nmodules = vm_lua_runtime_count,
                       .open_libs = vm_lua_open_host,
                       .preload = PRELOAD,
                       .preload_len = sizeof PRELOAD - 1,
                       .mem_cap = (size_t)512 << 20};
    vn_err e;
    if (sbx_lua_new(&cfg, &g_L, &e)) {
      fprintf(stderr, "sbx_lua_new: %s\n", e.msg);
      abort();
    }
  }
  sbx_call c = {.entry = "FUZZ", .payload = (const char *)data, .payload_len = size};
  sbx_result r;
  vn_err e;
  if (sbx_lua_apply(g_L, &c, &r, &e)) abort();
  if (r.status == SBX_OK && r.has_value && !strncmp(r.value, "DIFFER", 6)) {
    fprintf(stderr, "%s\n", r.value);
    abort();
  }
  sbx_result_free(&r);
  return 0;
}
