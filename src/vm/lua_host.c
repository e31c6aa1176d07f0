/* lua_host.c - C helpers the Lua workers get: the JSON codec of apply_json.
 *
 * The AO library's own JSON module (runtime/lua/json.lua) is plain Lua;
 * decoding each message and encoding each result with it cost about four
 * times the work of handling the message itself (measured: 76 of 94 us per
 * message). The zygote therefore installs `vmnode_host = {decode, encode}`
 * before the library loads; process.lua takes the two functions and removes
 * the global, so process code never sees them. Both produce exactly what the
 * Lua versions do for the shapes the host sends and the library returns:
 *  - decode: objects and arrays become tables (keys in document order)
 *    with the metatables json.lua gives them (passed in), integers stay
 *    integers, null is left out (json.lua keeps json.null in arrays: the
 *    host never sends null);
 *  - encode: the rules of json.encode with skip_functions - object keys
 *    sorted bytewise, a table is an array when its keys are exactly 1..n
 *    (or it is marked json.array) and an object otherwise (empty: [] unless
 *    marked json.object), numbers formatted like json.lua, functions,
 *    threads and userdata skipped in objects and null in arrays, nesting
 *    limited to 200 levels (so cycles end in an error).
 * Neither is metered by the instruction budget; both are bounded by the
 * sizes the arena's cap allows. The worker is single-threaded, so the
 * encoder's buffer is a static reused between calls (a Lua error unwinding
 * through it leaks nothing). */
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"

#define MAX_DEPTH 200

/* ---- decode ---- */

/* Stack slots of the metatables decode gives arrays and objects (0: none),
 * as json.lua's decoder marks them. */
static int g_amt, g_omt;

static void push_json(lua_State *L, json_t *j, int depth) {
  if (depth > MAX_DEPTH) luaL_error(L, "json.decode: nesting too deep");
  luaL_checkstack(L, 4, "json.decode");
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    lua_createtable(L, 0, (int)json_object_size(j));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      if (json_is_null(v)) continue;
      lua_pushstring(L, k);
      push_json(L, v, depth + 1);
      lua_rawset(L, -3);
    }
    if (g_omt) {
      lua_pushvalue(L, g_omt);
      lua_setmetatable(L, -2);
    }
    break;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(j);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      json_t *v = json_array_get(j, i);
      if (json_is_null(v)) continue;
      push_json(L, v, depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (g_amt) {
      lua_pushvalue(L, g_amt);
      lua_setmetatable(L, -2);
    }
    break;
  }
  case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
  case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(j)); break;
  case JSON_REAL: lua_pushnumber(L, (lua_Number)json_real_value(j)); break;
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  default: lua_pushnil(L); break;
  }
}

static json_t *g_doc; /* freed at the next call if an error unwound past it */

/* decode(s[, array_mt, object_mt]) -> value */
static int h_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_settop(L, 3);
  g_amt = lua_istable(L, 2) ? 2 : 0;
  g_omt = lua_istable(L, 3) ? 3 : 0;
  json_decref(g_doc);
  json_error_t je;
  g_doc = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!g_doc) return luaL_error(L, "json.decode: %s at line %d column %d", je.text, je.line, je.column);
  push_json(L, g_doc, 0);
  json_decref(g_doc);
  g_doc = NULL;
  return 1;
}

/* ---- encode ---- */

static struct {
  char *p;
  size_t len, cap;
} g_out;

static void put(lua_State *L, const char *s, size_t n) {
  if (g_out.len + n + 1 > g_out.cap) {
    size_t cap = g_out.cap ? g_out.cap : 4096;
    while (cap < g_out.len + n + 1) cap *= 2;
    char *p = realloc(g_out.p, cap);
    if (!p) luaL_error(L, "not enough memory");
    g_out.p = p;
    g_out.cap = cap;
  }
  memcpy(g_out.p + g_out.len, s, n);
  g_out.len += n;
}

static void put_string(lua_State *L, const char *s, size_t n) {
  put(L, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[8];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c < 0x20 || c == 0x7f) {
      snprintf(u, sizeof u, "\\u%04x", c);
      esc = u;
    }
    if (esc) {
      put(L, s + i - run, run);
      run = 0;
      put(L, esc, strlen(esc));
    } else {
      run++;
    }
  }
  put(L, s + n - run, run);
  put(L, "\"", 1);
}

static void put_number(lua_State *L, int idx) {
  char b[64];
  if (lua_isinteger(L, idx)) {
    snprintf(b, sizeof b, "%lld", (long long)lua_tointeger(L, idx));
  } else {
    lua_Number x = lua_tonumber(L, idx);
    if (x != x || isinf(x)) {
      luaL_error(L, "json.encode: cannot encode number %s", x != x ? "nan" : "inf");
      return;
    }
    if (x == floor(x) && x > -9007199254740992.0 && x < 9007199254740992.0) {
      snprintf(b, sizeof b, "%lld", (long long)x);
    } else {
      snprintf(b, sizeof b, "%.14g", x);
      if (strtod(b, NULL) != x) snprintf(b, sizeof b, "%.17g", x);
    }
  }
  put(L, b, strlen(b));
}

typedef struct key {
  const char *s;
  size_t n;
  int ref; /* index of the key's string on the Lua stack (the key is just below) */
} key;

static int key_cmp(const void *a, const void *b) {
  const key *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The value at idx (absolute); null_idx holds json.null. */
static void put_value(lua_State *L, int idx, int null_idx, int depth);

static void put_table(lua_State *L, int idx, int null_idx, int depth) {
  if (depth > MAX_DEPTH) luaL_error(L, "json.encode: nesting too deep");
  luaL_checkstack(L, 8, "json.encode");
  const char *forced = NULL;
  if (lua_getmetatable(L, idx)) {
    if (lua_getfield(L, -1, "__tojson") == LUA_TFUNCTION) {
      lua_pushvalue(L, idx);
      lua_call(L, 1, 1);
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      if (s) put(L, s, n);
      lua_pop(L, 2);
      return;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "__jsontype") == LUA_TSTRING) {
      const char *t = lua_tostring(L, -1);
      forced = !strcmp(t, "object") ? "object" : !strcmp(t, "array") ? "array" : NULL;
    }
    lua_pop(L, 2);
  }
  /* kind_of: count keys, find the largest positive integer key */
  lua_Integer n = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    if (lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0) {
      if (max >= 0 && lua_tointeger(L, -2) > max) max = lua_tointeger(L, -2);
    } else {
      max = -1;
    }
    lua_pop(L, 1);
  }
  if (n == 0) {
    put(L, forced && !strcmp(forced, "object") ? "{}" : "[]", 2);
    return;
  }
  if (!(forced && !strcmp(forced, "object")) && max == n) {
    put(L, "[", 1);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) put(L, ",", 1);
      lua_rawgeti(L, idx, i);
      int t = lua_type(L, -1);
      if (t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA || t == LUA_TLIGHTUSERDATA)
        put(L, "null", 4);
      else
        put_value(L, lua_gettop(L), null_idx, depth + 1);
      lua_pop(L, 1);
    }
    put(L, "]", 1);
    return;
  }
  /* object: the keys as strings (numbers formatted as json.lua does), sorted */
  int base = lua_gettop(L);
  key *keys = lua_newuserdatauv(L, (size_t)n * sizeof *keys, 0); /* freed by the GC */
  lua_Integer k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int tv = lua_type(L, -1);
    lua_pop(L, 1);
    if (tv == LUA_TFUNCTION || tv == LUA_TTHREAD || tv == LUA_TUSERDATA || tv == LUA_TLIGHTUSERDATA)
      continue;
    int tk = lua_type(L, -1);
    if (tk != LUA_TSTRING && tk != LUA_TNUMBER)
      luaL_error(L, "json.encode: object key of type %s", lua_typename(L, tk));
    luaL_checkstack(L, 4, "json.encode");
    if (tk == LUA_TSTRING) {
      lua_pushvalue(L, -1);
    } else {
      size_t mark = g_out.len;
      put_number(L, lua_gettop(L));
      lua_pushlstring(L, g_out.p + mark, g_out.len - mark);
      g_out.len = mark;
    }
    /* stack: … key, keystring: keep both (the key to look the value up),
     * and give lua_next a copy of the key */
    keys[k].ref = lua_gettop(L);
    keys[k].s = lua_tolstring(L, keys[k].ref, &keys[k].n);
    lua_pushvalue(L, -2);
    k++;
  }
  qsort(keys, (size_t)k, sizeof *keys, key_cmp);
  for (lua_Integer i = 1; i < k; i++)
    if (!key_cmp(&keys[i - 1], &keys[i])) luaL_error(L, "json.encode: duplicate key");
  put(L, "{", 1);
  for (lua_Integer i = 0; i < k; i++) {
    if (i) put(L, ",", 1);
    put_string(L, keys[i].s, keys[i].n);
    put(L, ":", 1);
    /* the value, by the original key (just below its string) */
    lua_pushvalue(L, keys[i].ref - 1);
    lua_rawget(L, idx);
    put_value(L, lua_gettop(L), null_idx, depth + 1);
    lua_pop(L, 1);
  }
  put(L, "}", 1);
  lua_settop(L, base);
}

static void put_value(lua_State *L, int idx, int null_idx, int depth) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: put(L, "null", 4); break;
  case LUA_TBOOLEAN: lua_toboolean(L, idx) ? put(L, "true", 4) : put(L, "false", 5); break;
  case LUA_TNUMBER: put_number(L, idx); break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    put_string(L, s, n);
    break;
  }
  case LUA_TTABLE:
    if (null_idx && lua_rawequal(L, idx, null_idx)) put(L, "null", 4);
    else put_table(L, idx, null_idx, depth);
    break;
  default: put(L, "null", 4); break; /* skip_functions: as json.lua */
  }
}

/* encode(value[, null_sentinel]) -> string */
static int h_encode(lua_State *L) {
  lua_settop(L, 2);
  g_out.len = 0;
  put_value(L, 1, lua_istable(L, 2) ? 2 : 0, 0);
  lua_pushlstring(L, g_out.p ? g_out.p : "", g_out.len);
  if (g_out.cap > ((size_t)1 << 20)) { /* do not keep a big buffer around */
    free(g_out.p);
    g_out.p = NULL;
    g_out.cap = 0;
  }
  g_out.len = 0;
  return 1;
}

void vm_lua_open_host(lua_State *L) {
  /* jansson seeds its hash tables from /dev/urandom on first use; the
   * worker's seccomp filter forbids open(), so seed it here, in the zygote
   * (iteration order is insertion order whatever the seed). */
  json_object_seed(0x766d6e6f);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, h_decode);
  lua_setfield(L, -2, "decode");
  lua_pushcfunction(L, h_encode);
  lua_setfield(L, -2, "encode");
  lua_setglobal(L, "vmnode_host");
}
