/* test_lua_host.c - the Lua workers' C JSON codec (src/vm/lua_host.c) must
 * give exactly what the library's Lua codec (runtime/lua/json.lua) gives:
 * both are compared inside one engine on many values, and the whole
 * apply_json path is run with and without the C codec. */
#include "testutil.h"

#include <lauxlib.h>
#include <lua.h>

#include "sandbox/worker.h"
#include "vm/vm.h"

extern const sbx_module vm_lua_runtime[];
extern const unsigned vm_lua_runtime_count;

static sbx_lua *cur;

static sbx_lua *engine(int with_host) {
  sbx_lua_cfg cfg = {.modules = vm_lua_runtime,
                     .nmodules = vm_lua_runtime_count,
                     .open_libs = with_host ? vm_lua_open_host : NULL};
  vn_err e;
  if (sbx_lua_new(&cfg, &cur, &e)) fail_msg("sbx_lua_new: %s", e.msg);
  return cur;
}

static int teardown(void **state) {
  (void)state;
  if (cur) sbx_lua_free(cur);
  cur = NULL;
  return 0;
}

/* Run a chunk; it must return the string want. */
static void run(sbx_lua *L, const char *chunk, const char *want) {
  sbx_call c = {.payload = chunk, .payload_len = strlen(chunk)};
  sbx_result r;
  vn_err e;
  assert_int_equal(sbx_lua_apply(L, &c, &r, &e), 0);
  if (r.status != SBX_OK) fail_msg("%s: %s", sbx_status_name(r.status), r.error);
  assert_true(r.has_value);
  assert_string_equal(r.value, want);
  sbx_result_free(&r);
}

static const char SAME[] =
    "local json = require('json')\n"
    "local H = vmnode_host\n"
    "local cases = {\n"
    "  {}, json.object({}), json.array({}), {1, 2, 3}, {a = 1, b = {c = {true, false}}},\n"
    "  {[1] = 'x', [3] = 'y'}, {[2] = 'a'}, {z = 1, a = 2, M = 3, ['a b'] = 4, [''] = 5},\n"
    "  {1.5, -0.25, 1e300, 2^53, 2^53 + 2, -2^60, 3.0, 1/3, math.maxinteger, math.mininteger},\n"
    "  {s = 'quote \" backslash \\\\ nl \\n tab \\t cr \\r bs \\b ff \\f nul \\0 del \\127 ctl \\1'},\n"
    "  {utf = 'h\\u{e9}llo \\u{1F600}', bytes = '\\255\\254'},\n"
    "  {f = function() end, t = coroutine.create(function() end), keep = 1},\n"
    "  {1, function() end, 3}, {n = json.null, list = {1, json.null, 3}},\n"
    "  {[10] = 'ten', [1] = 'one'}, {[1.5] = 'x'}, json.array({1, 2}), json.object({1, 2}),\n"
    "  {Messages = json.array({}), Cache = json.object({}), Output = {data = '', prompt = 'p> '}},\n"
    "  'str', 42, 4.25, true, false,\n"
    "}\n"
    "for i, v in ipairs(cases) do\n"
    "  local a = json.encode(v, {skip_functions = true})\n"
    "  local b = H.encode(v, json.null)\n"
    "  if a ~= b then error('case ' .. i .. ': lua ' .. a .. ' c ' .. b) end\n"
    "end\n"
    "-- nesting too deep and cycles are errors in both\n"
    "local deep = {} local t = deep for i = 1, 300 do t.x = {} t = t.x end\n"
    "assert(not pcall(json.encode, deep) and not pcall(H.encode, deep))\n"
    "local cyc = {} cyc.self = cyc\n"
    "assert(not pcall(H.encode, cyc))\n"
    "assert(not pcall(H.encode, {0/0}) and not pcall(H.encode, {math.huge}))\n"
    "-- decode: the same tables\n"
    "local docs = {'{\"a\":1,\"b\":[1,2,{\"c\":\"d\"}],\"e\":true,\"f\":false,\"g\":1.5}',\n"
    "  '[]', '{}', '\"\\\\u00e9\\\\n\"', '{\"msg\":{\"Tags\":[{\"name\":\"A\",\"value\":\"B\"}],\"Nonce\":7}}'}\n"
    "for i, d in ipairs(docs) do\n"
    "  local a = json.encode(json.decode(d))\n"
    "  local b = json.encode(H.decode(d, getmetatable(json.array()), getmetatable(json.object())))\n"
    "  if a ~= b then error('decode ' .. i .. ': lua ' .. a .. ' c ' .. b) end\n"
    "end\n"
    "assert(math.type(H.decode('{\"n\":7}').n) == 'integer')\n"
    "assert(not pcall(H.decode, '{'))\n"
    "return 'same'\n";

static void test_same_output(void **state) {
  (void)state;
  run(engine(1), SAME, "same");
}

/* The library's apply_json gives the same bytes with either codec. */
static const char SESSION[] =
    "local p = require('process')\n"
    "local env = '\"env\":{\"Process\":{\"Id\":\"P\",\"Owner\":\"O\",\"Tags\":[]},"
    "\"Module\":{\"Id\":\"M\",\"Owner\":\"MO\",\"Tags\":[]}}'\n"
    "local out = {}\n"
    "local function m(id, action, data)\n"
    "  return '{\"msg\":{\"Id\":\"' .. id .. '\",\"Owner\":\"O\",\"Target\":\"P\",\"Tags\":"
    "[{\"name\":\"Action\",\"value\":\"' .. action .. '\"}],\"Data\":' .. require('json').quote(data) "
    ".. ',\"Timestamp\":5},' .. env .. '}'\n"
    "end\n"
    "out[#out + 1] = p.apply_json('{\"msg\":{\"Id\":\"P\",\"Owner\":\"O\",\"Target\":\"P\","
    "\"Tags\":[],\"Timestamp\":1},' .. env .. '}')\n"
    "out[#out + 1] = p.apply_json(m('a', 'Eval', 'Handlers.add(\"Hi\", function(msg) "
    "msg.reply({Data = {x = 1, y = {2, 3}}}); print({k = \"v\"}) end)'))\n"
    "out[#out + 1] = p.apply_json(m('b', 'Hi', ''))\n"
    "out[#out + 1] = p.apply_json(m('c', 'Eval', 'error(\"no\")'))\n"
    "out[#out + 1] = p.apply_json(m('d', 'Eval', 'Cache{a = 1, b = {true}}; return 2.5'))\n"
    "return table.concat(out, '\\n')\n";

static void test_same_session(void **state) {
  (void)state;
  sbx_lua *L = engine(0);
  sbx_call c = {.payload = SESSION, .payload_len = strlen(SESSION)};
  sbx_result a, b;
  vn_err e;
  assert_int_equal(sbx_lua_apply(L, &c, &a, &e), 0);
  if (a.status != SBX_OK) fail_msg("lua codec: %s", a.error);
  sbx_lua_free(L);
  cur = NULL;
  L = engine(1);
  assert_int_equal(sbx_lua_apply(L, &c, &b, &e), 0);
  if (b.status != SBX_OK) fail_msg("c codec: %s", b.error);
  assert_non_null(strstr(a.value, "\"data\":\"{"));
  assert_string_equal(a.value, b.value);
  sbx_result_free(&a);
  sbx_result_free(&b);
}

/* Process code cannot reach the host table. */
static void test_hidden(void **state) {
  (void)state;
  sbx_lua *L = engine(1);
  run(L, "require('process') return tostring(rawget(_G, 'vmnode_host'))", "nil");
}

int main(int argc, char **argv) {
  vn_err e;
  if (sbx_norandomize_reexec(argv, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_same_output, teardown),
      cmocka_unit_test_teardown(test_same_session, teardown),
      cmocka_unit_test_teardown(test_hidden, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
