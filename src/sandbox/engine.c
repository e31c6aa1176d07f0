/* engine.c - a deterministic, metered Lua state in an arena (sbx_lua_*).
 *
 * Determinism. Lua 5.4 seeds its string hash in lua_newstate from
 * luai_makeseed(), which mixes time(NULL), the address of the new state, the
 * address of a local variable and the address of lua_newstate. We pin each:
 *  - the state is the arena's first allocation, at a fixed address;
 *  - lua_newstate runs on a stack mapped at a fixed address (LUA_STACK), so
 *    the local variable's address does not depend on argv/env size;
 *  - time() is interposed: this file defines `time`, and liblua's call goes
 *    through its PLT to the executable's definition, which returns
 *    SBX_FIXED_TIME on a thread that is creating a state and the real time
 *    otherwise (so the rest of the program is unaffected);
 *  - lua_newstate's address is fixed by ADDR_NO_RANDOMIZE plus the same
 *    executable and libraries (sbx_norandomize_reexec, the zygote).
 * The allocator is deterministic and the heap holds everything, so table
 * layouts (and pairs order, also for table/function keys), GC timing and the
 * image bytes all repeat. For the bytes to repeat in *another* process, no
 * address that differs between processes may reach the heap, not even in
 * dead slots: so every Lua call runs on that same fixed stack (luaL_Buffer
 * leaves its C-stack address in a Lua stack slot), and C strings given to
 * Lua by address (chunk names; lua_getglobal would key Lua's string cache by
 * the caller's pointer) are copied to fixed buffers first.
 *
 * Gas. A count hook fires every SBX_GAS_TICK instructions on every thread
 * (coroutines inherit it). When the budget is spent, the hook switches the
 * running thread to a count of 1 and raises "gas exhausted"; a pcall in the
 * script catches it, but the next instruction raises again, so the error
 * climbs out of every pcall and coroutine to the top. Hooks do not run in
 * __gc metamethods (Lua turns them off there), which is why setmetatable
 * refuses metatables with __gc. Time spent inside one C function (a
 * pathological string.find) is not counted: the worker's wall-clock timeout
 * covers that.
 *
 * One state per process at a time is "active" (g_active, the only global
 * here besides the pinned-time flag): the hook, print and os.time reach the
 * engine through it during a call. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* Where all Lua code runs: a guard page, then 8 MiB of stack (NORESERVE). */
#define LUA_STACK ((uintptr_t)0x7df000000000ULL)
#define LUA_STACK_SIZE ((size_t)8 << 20)

/* ---- time() ---- */

static __thread int t_pin_time;

/* Overrides libc's time() for the whole executable (and the libraries it
 * loads, liblua included). Real time unless this thread is creating a state. */
time_t time(time_t *t) {
  time_t v;
  if (t_pin_time) {
    v = (time_t)SBX_FIXED_TIME;
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = ts.tv_sec;
  }
  if (t) *t = v;
  return v;
}

/* ---- the engine ---- */

struct sbx_lua {
  sbx_arena *arena;
  lua_State *L;
  /* the current call */
  const sbx_call *call;
  uint64_t gas_limit, ticks;
  int exhausted, syntax, oom;
  char *out;
  size_t out_len, out_cap;
  int out_trunc;
  char *val;
  size_t val_len;
  int has_val;
};

static sbx_lua *g_active;

static void gas_hook(lua_State *L, lua_Debug *ar) {
  sbx_lua *e = g_active;
  if (!e) return;
  if (!e->exhausted) {
    e->ticks++;
    if (e->ticks * SBX_GAS_TICK <= e->gas_limit) return;
    e->exhausted = 1;
  }
  /* From now on every instruction of this thread and of the main thread
   * raises (a coroutine's death must not let its resumer finish quietly;
   * other resumers in between raise at their next tick). */
  lua_sethook(L, gas_hook, LUA_MASKCOUNT, 1);
  if (L != e->L) lua_sethook(e->L, gas_hook, LUA_MASKCOUNT, 1);
  lua_pushliteral(L, "gas exhausted");
  lua_error(L);
}

static void out_add(sbx_lua *e, const char *s, size_t n) {
  if (e->out_trunc) return;
  if (e->out_len + n > SBX_OUTPUT_MAX) {
    n = SBX_OUTPUT_MAX - e->out_len;
    e->out_trunc = 1;
  }
  if (e->out_len + n + 1 > e->out_cap) {
    size_t cap = e->out_cap ? e->out_cap : 1024;
    while (cap < e->out_len + n + 1) cap *= 2;
    char *p = realloc(e->out, cap);
    if (!p) {
      e->out_trunc = 1;
      return;
    }
    e->out = p;
    e->out_cap = cap;
  }
  memcpy(e->out + e->out_len, s, n);
  e->out_len += n;
  e->out[e->out_len] = 0;
}

/* ---- the host's library functions ---- */

static int l_print(lua_State *L) {
  sbx_lua *e = g_active;
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (e) {
      if (i > 1) out_add(e, "\t", 1);
      out_add(e, s, len);
    }
    lua_pop(L, 1);
  }
  if (e) out_add(e, "\n", 1);
  return 0;
}

/* load() with the mode forced to text; the env argument keeps its presence. */
static int l_load(lua_State *L) {
  if (lua_gettop(L) < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int l_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    int t = lua_rawget(L, 2);
    lua_pop(L, 1);
    if (t != LUA_TNIL)
      return luaL_error(L, "__gc metamethods are not supported (finalizers cannot be metered)");
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* collectgarbage("count") only: a full collection costs time the gas
 * counter does not see, and "stop" would only trade for the memory cap. */
static int l_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count"))
    return luaL_error(L, "collectgarbage('%s') is not allowed here (only 'count')", opt);
  int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
  lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024);
  return 1;
}

/* require(name): modules the host gave as source (registry "sbx.modules"),
 * loaded once (cache: registry "sbx.loaded"). A leading "." is ignored. */
static int l_require(lua_State *L) {
  size_t n;
  const char *name = luaL_checklstring(L, 1, &n);
  while (n && *name == '.') name++, n--;
  lua_settop(L, 0);
  lua_pushlstring(L, name, n);                      /* 1: the name */
  lua_getfield(L, LUA_REGISTRYINDEX, "sbx.loaded"); /* 2 */
  lua_pushvalue(L, 1);
  if (lua_rawget(L, 2) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "sbx.modules");
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TSTRING)
    return luaL_error(L, "module '%s' not found", lua_tostring(L, 1));
  size_t len;
  const char *src = lua_tolstring(L, -1, &len);
  const char *chunk = lua_pushfstring(L, "@%s.lua", lua_tostring(L, 1)); /* in the heap */
  if (luaL_loadbufferx(L, src, len, chunk, "t") != LUA_OK) return lua_error(L);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_rawset(L, 2);
  return 1;
}

static lua_Integer date_field(lua_State *L, const char *k, lua_Integer d) {
  int t = lua_getfield(L, 1, k);
  lua_Integer v;
  if (t == LUA_TNIL) {
    if (d < 0) return luaL_error(L, "field '%s' missing in date table", k);
    v = d;
  } else {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok) return luaL_error(L, "field '%s' is not an integer", k);
  }
  lua_pop(L, 1);
  return v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long long days_from_civil(long long y, long long m, long long d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* os.time(): the call's timestamp. os.time{year=,month=,day=[,hour=12,min=,sec=]}:
 * seconds since the epoch, computed in UTC (no time zones in a worker). */
static int l_time(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_getfield(L, LUA_REGISTRYINDEX, "sbx.now");
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer y = date_field(L, "year", -1), mo = date_field(L, "month", -1);
  lua_Integer d = date_field(L, "day", -1), h = date_field(L, "hour", 12);
  lua_Integer mi = date_field(L, "min", 0), s = date_field(L, "sec", 0);
  if (y < -1000000 || y > 1000000 || mo < -1000000 || mo > 1000000)
    return luaL_error(L, "date out of range");
  long long m0 = mo - 1, yy = y + (m0 >= 0 ? m0 / 12 : (m0 - 11) / 12);
  long long mm = m0 - (yy - y) * 12 + 1;
  lua_pushinteger(
      L, (lua_Integer)(days_from_civil(yy, mm, 1) + (d - 1)) * 86400 + h * 3600 + mi * 60 + s);
  return 1;
}

static int open_libs(lua_State *L) {
  static const luaL_Reg libs[] = {
      {LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
      {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
      {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
  };
  for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
    luaL_requiref(L, libs[i].name, libs[i].func, 1);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  lua_pushcfunction(L, l_print);
  lua_setglobal(L, "print");
  lua_getglobal(L, "load");
  lua_pushcclosure(L, l_load, 1);
  lua_setglobal(L, "load");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, l_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_time);
  lua_setfield(L, -2, "time");
  lua_setglobal(L, "os");
  lua_getglobal(L, LUA_MATHLIBNAME);
  lua_getfield(L, -1, "randomseed");
  lua_setfield(L, LUA_REGISTRYINDEX, "sbx.randomseed");
  lua_pop(L, 1);
  lua_pushinteger(L, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, "sbx.now");
  lua_pushcfunction(L, l_collectgarbage);
  lua_setglobal(L, "collectgarbage");
  const sbx_lua_cfg *cfg = lua_touserdata(L, 1);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "sbx.loaded");
  lua_createtable(L, 0, (int)cfg->nmodules);
  for (size_t i = 0; i < cfg->nmodules; i++) {
    /* lua_setfield would key Lua's string cache by the caller's pointer */
    lua_pushlstring(L, cfg->modules[i].name, strlen(cfg->modules[i].name));
    lua_pushlstring(L, cfg->modules[i].src, cfg->modules[i].len);
    lua_rawset(L, -3);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "sbx.modules");
  lua_pushcfunction(L, l_require);
  lua_setglobal(L, "require");
  if (cfg->open_libs) cfg->open_libs(L);
  return 0;
}

static int g_worker_mode;

void sbx_engine_worker_mode(void) {
  g_worker_mode = 1;
}

static int l_panic(lua_State *L) {
  const char *m = lua_tostring(L, -1);
  fprintf(stderr, "sandbox: unprotected Lua error: %s\n", m ? m : "?");
  if (g_worker_mode) _exit(SBX_EXIT_PANIC);
  abort();
}

static void l_warn(void *ud, const char *msg, int tocont) {
  (void)ud, (void)msg, (void)tocont; /* warnings are dropped: not part of a result */
}

/* ---- the fixed stack ---- */

/* Under AddressSanitizer the stack switch must be announced (fiber API),
 * and the reused stack's shadow cleared, or ASan reports its own confusion. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_ASAN 1
#endif
#elif defined(__SANITIZE_ADDRESS__)
#define SBX_ASAN 1
#endif
#ifdef SBX_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

static struct {
  ucontext_t back, run;
  void (*fn)(void *);
  void *arg;
  int mapped;
  const void *main_bottom;
  size_t main_size;
} g_fx;

static void fx_entry(void) {
#ifdef SBX_ASAN
  __sanitizer_finish_switch_fiber(NULL, &g_fx.main_bottom, &g_fx.main_size);
#endif
  g_fx.fn(g_fx.arg);
#ifdef SBX_ASAN
  __sanitizer_start_switch_fiber(NULL, g_fx.main_bottom, g_fx.main_size);
#endif
}

/* Run fn(arg) on the stack at LUA_STACK (mapped on first use, kept: forked
 * workers inherit it). fn must not longjmp out (every Lua call in it is
 * protected). */
static int on_fixed_stack(void (*fn)(void *), void *arg, vn_err *err) {
  if (!g_fx.mapped) {
    void *m = mmap((void *)LUA_STACK, SBX_PAGE + LUA_STACK_SIZE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED || (uintptr_t)m != LUA_STACK ||
        mprotect((char *)m + SBX_PAGE, LUA_STACK_SIZE, PROT_READ | PROT_WRITE)) {
      if (m != MAP_FAILED) munmap(m, SBX_PAGE + LUA_STACK_SIZE);
      return vn_errf(err, "lua_init", "cannot map the Lua stack at %#lx: %s",
                     (unsigned long)LUA_STACK, strerror(errno));
    }
    g_fx.mapped = 1;
  }
  g_fx.fn = fn;
  g_fx.arg = arg;
  getcontext(&g_fx.run);
  g_fx.run.uc_stack.ss_sp = (void *)(LUA_STACK + SBX_PAGE);
  g_fx.run.uc_stack.ss_size = LUA_STACK_SIZE;
  g_fx.run.uc_link = &g_fx.back;
  makecontext(&g_fx.run, fx_entry, 0);
#ifdef SBX_ASAN
  void *fake = NULL;
  __asan_unpoison_memory_region((void *)(LUA_STACK + SBX_PAGE), LUA_STACK_SIZE);
  __sanitizer_start_switch_fiber(&fake, (void *)(LUA_STACK + SBX_PAGE), LUA_STACK_SIZE);
#endif
  swapcontext(&g_fx.back, &g_fx.run);
#ifdef SBX_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
  return 0;
}

typedef struct newstate_args {
  sbx_arena *arena;
  lua_State *L;
} newstate_args;

static void newstate_fixed(void *p) {
  newstate_args *a = p;
  t_pin_time = 1;
  a->L = lua_newstate(sbx_arena_alloc, a->arena);
  t_pin_time = 0;
}

/* ---- calls ---- */

static void result_reset(sbx_lua *e) {
  free(e->val);
  e->val = NULL;
  e->val_len = 0;
  e->has_val = 0;
  e->out_len = 0;
  e->out_trunc = 0;
  if (e->out) e->out[0] = 0;
}

static char g_name[256]; /* entry or chunk name, at a fixed address */

/* Runs protected: everything that may allocate in the state happens here. */
static int drive(lua_State *L) {
  sbx_lua *e = g_active;
  const sbx_call *c = e->call;
  if (c->entry && strlen(c->entry) >= sizeof g_name)
    return luaL_error(L, "entry name longer than %d bytes", (int)sizeof g_name - 1);
  lua_pushinteger(L, (lua_Integer)c->timestamp);
  lua_setfield(L, LUA_REGISTRYINDEX, "sbx.now");
  lua_getfield(L, LUA_REGISTRYINDEX, "sbx.randomseed");
  lua_pushinteger(L, (lua_Integer)c->seed[0]);
  lua_pushinteger(L, (lua_Integer)c->seed[1]);
  lua_call(L, 2, 0);
  if (c->entry && *c->entry) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushstring(L, strcpy(g_name, c->entry)); /* by a fixed address: see the top */
    if (lua_gettable(L, -2) != LUA_TFUNCTION)
      return luaL_error(L, "entry '%s' is not a function", c->entry);
    lua_pushlstring(L, c->payload ? c->payload : "", c->payload_len);
    lua_call(L, 1, 1);
  } else {
    snprintf(g_name, sizeof g_name, "%s", c->chunkname ? c->chunkname : "=apply");
    int st = luaL_loadbufferx(L, c->payload ? c->payload : "", c->payload_len, g_name, "t");
    if (st != LUA_OK) {
      e->syntax = st == LUA_ERRSYNTAX;
      e->oom = st == LUA_ERRMEM;
      return lua_error(L);
    }
    lua_call(L, 0, 1);
  }
  if (!lua_isnil(L, -1)) {
    size_t n;
    const char *s = luaL_tolstring(L, -1, &n);
    if (n > SBX_PAYLOAD_MAX) return luaL_error(L, "result of %zu bytes is too large", n);
    e->val = malloc(n + 1);
    if (!e->val) return luaL_error(L, "out of host memory for the result");
    memcpy(e->val, s, n);
    e->val[n] = 0;
    e->val_len = n;
    e->has_val = 1;
  }
  return 0;
}

static int errstr(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* A copy of an error message, cut at SBX_ERROR_MAX bytes. */
static char *xstrdup(const char *s) {
  size_t n = strlen(s);
  int cut = n > SBX_ERROR_MAX;
  if (cut) n = SBX_ERROR_MAX;
  char *c = malloc(n + 4);
  if (c) {
    memcpy(c, s, n);
    memcpy(c + n, cut ? "..." : "", cut ? 4 : 1);
  }
  return c;
}

void sbx_result_free(sbx_result *r) {
  if (!r) return;
  free(r->value);
  free(r->error);
  free(r->output);
  memset(r, 0, sizeof *r);
}

const char *sbx_status_name(sbx_status s) {
  switch (s) {
    case SBX_OK:
      return "ok";
    case SBX_ERR_RUNTIME:
      return "runtime";
    case SBX_ERR_SYNTAX:
      return "syntax";
    case SBX_ERR_GAS:
      return "gas";
    case SBX_ERR_MEMORY:
      return "memory";
  }
  return "unknown";
}

typedef struct apply_args {
  sbx_lua *e;
  sbx_result *r;
  int st;
  char *msg;
} apply_args;

/* The Lua part of a call, on the fixed stack. */
static void apply_fixed(void *p) {
  apply_args *a = p;
  sbx_lua *e = a->e;
  lua_State *L = e->L;
  sbx_arena_stats st0, st1;
  sbx_arena_stats_get(e->arena, &st0);
  lua_settop(L, 0);
  lua_sethook(L, gas_hook, LUA_MASKCOUNT, SBX_GAS_TICK);
  lua_pushcfunction(L, drive);
  int st = lua_pcall(L, 0, 0, 0);
  if (st == LUA_OK && e->exhausted) { /* belt and braces: the budget was spent */
    st = LUA_ERRRUN;
    lua_pushliteral(L, "gas exhausted");
  }
  a->st = st;
  if (st != LUA_OK) {
    sbx_arena_stats_get(e->arena, &st1);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (e->exhausted) {
      a->r->status = SBX_ERR_GAS;
      char b[160];
      snprintf(b, sizeof b, "gas exhausted: %llu instructions used (limit %llu)",
               (unsigned long long)e->ticks * SBX_GAS_TICK, (unsigned long long)e->gas_limit);
      a->msg = xstrdup(b);
    } else {
      if (st == LUA_ERRMEM || e->oom ||
          (st1.failed > st0.failed && s && !strcmp(s, "not enough memory")))
        a->r->status = SBX_ERR_MEMORY;
      else
        a->r->status = e->syntax ? SBX_ERR_SYNTAX : SBX_ERR_RUNTIME;
      if (s) {
        a->msg = xstrdup(s);
      } else {
        lua_pushcfunction(L, errstr);
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
          a->msg = xstrdup(lua_tostring(L, -1));
        else
          a->msg = xstrdup("(error object is not a string)");
      }
    }
  }
  lua_settop(L, 0);
}

int sbx_lua_apply(sbx_lua *e, const sbx_call *c, sbx_result *r, vn_err *err) {
  memset(r, 0, sizeof *r);
  if (!e->L) return vn_errf(err, "worker_broken", "the Lua state was lost (failed restore)");
  if (c->mem_cap) sbx_arena_set_cap(e->arena, c->mem_cap);
  result_reset(e);
  e->call = c;
  e->gas_limit = c->gas_limit ? c->gas_limit : SBX_GAS_DEFAULT;
  e->ticks = 0;
  e->exhausted = e->syntax = e->oom = 0;
  g_active = e;
  apply_args a = {.e = e, .r = r};
  int rc = on_fixed_stack(apply_fixed, &a, err);
  g_active = NULL;
  e->call = NULL;
  if (rc) return -1;
  r->gas_used = e->ticks * SBX_GAS_TICK;
  sbx_arena_stats st;
  sbx_arena_stats_get(e->arena, &st);
  r->footprint = st.footprint;
  r->error = a.msg;
  r->has_value = a.st == LUA_OK && e->has_val;
  if (r->has_value) {
    r->value = e->val;
    r->value_len = e->val_len;
    e->val = NULL;
  }
  r->output = malloc(e->out_len + 1);
  if (r->output) {
    if (e->out_len) memcpy(r->output, e->out, e->out_len);
    r->output[e->out_len] = 0;
    r->output_len = e->out_len;
  }
  r->output_truncated = e->out_trunc;
  if (!r->output || (a.st != LUA_OK && !r->error)) {
    sbx_result_free(r);
    return vn_errf(err, "worker_broken", "out of host memory for a result");
  }
  return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* A worker is a copy-on-write fork of the zygote: its first call would take
 * a page fault (and a page copy) for every heap page and stack page it
 * writes. Taking them now, while the worker waits in the pool, keeps them
 * off the spawn path. The contents do not change. Best effort (needs Linux
 * 5.14; older kernels just fault later). */
static uintptr_t g_heap_lo, g_heap_hi; /* malloc's heap, found by the zygote */

/* In the zygote, before forking: note where malloc's heap is (its workers
 * have it at the same place). */
void sbx_engine_prefault_prepare(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) continue;
    if (!strcmp(perms, "rw-p") && strstr(line, "[heap]") && hi - lo <= ((size_t)16 << 20)) {
      g_heap_lo = lo;
      g_heap_hi = hi;
    }
  }
  if (f) fclose(f);
}

void sbx_engine_prefault(sbx_lua *e) {
  if (!e || !e->arena) return;
  /* malloc's heap too. Libraries' data pages are left to fault: populating
   * them cost about 1 MiB per idle worker for little gain (measured). */
  if (g_heap_hi > g_heap_lo)
    madvise((void *)g_heap_lo, g_heap_hi - g_heap_lo, MADV_POPULATE_WRITE);
  sbx_arena_stats st;
  sbx_arena_stats_get(e->arena, &st);
  size_t len = (st.footprint + SBX_PAGE - 1) & ~(size_t)(SBX_PAGE - 1);
  if (len) madvise((void *)e->arena, len, MADV_POPULATE_WRITE);
  size_t top = (size_t)64 << 10; /* the part of the fixed stack calls use */
  if (g_fx.mapped)
    madvise((void *)(LUA_STACK + SBX_PAGE + LUA_STACK_SIZE - top), top, MADV_POPULATE_WRITE);
}

/* ---- lifecycle ---- */

typedef struct open_args {
  lua_State *L;
  const sbx_lua_cfg *cfg;
  int st;
} open_args;

static void open_fixed(void *p) {
  open_args *a = p;
  t_pin_time = 1; /* luaopen_math seeds from time() too */
  lua_pushcfunction(a->L, open_libs);
  lua_pushlightuserdata(a->L, (void *)a->cfg);
  a->st = lua_pcall(a->L, 1, 0, 0);
  t_pin_time = 0;
}

static int run_preload(sbx_lua *e, const sbx_lua_cfg *cfg, vn_err *err) {
  sbx_call c = {.payload = cfg->preload,
                .payload_len = cfg->preload_len,
                .chunkname = cfg->preload_name ? cfg->preload_name : "=preload",
                .gas_limit = cfg->preload_gas ? cfg->preload_gas : 10 * SBX_GAS_DEFAULT};
  sbx_result r;
  if (sbx_lua_apply(e, &c, &r, err)) return -1;
  int rc = 0;
  if (r.status != SBX_OK)
    rc = vn_errf(err, "lua_init", "preload failed (%s): %s", sbx_status_name(r.status), r.error);
  sbx_result_free(&r);
  return rc;
}

int sbx_lua_new(const sbx_lua_cfg *cfg, sbx_lua **out, vn_err *err) {
  static const sbx_lua_cfg none;
  if (!cfg) cfg = &none;
  *out = NULL;
  sbx_lua *e = calloc(1, sizeof *e);
  if (!e) return vn_errf(err, "lua_init", "out of memory");
  sbx_layout_self(); /* before any sandbox: reads the loaded objects' notes */
  e->arena = sbx_arena_create(cfg->base ? cfg->base : SBX_ARENA_BASE,
                              cfg->reserve ? cfg->reserve : SBX_ARENA_RESERVE, cfg->mem_cap, err);
  if (!e->arena) {
    free(e);
    return -1;
  }
  newstate_args na = {.arena = e->arena};
  if (on_fixed_stack(newstate_fixed, &na, err)) goto fail;
  lua_State *L = na.L;
  if (!L) {
    vn_errf(err, "lua_init", "lua_newstate failed (arena cap too small?)");
    goto fail;
  }
  e->L = L;
  sbx_arena_set_root(e->arena, L);
  lua_atpanic(L, l_panic);
  lua_setwarnf(L, l_warn, NULL);
  lua_sethook(L, gas_hook, LUA_MASKCOUNT, SBX_GAS_TICK);
  open_args oa = {.L = L, .cfg = cfg};
  if (on_fixed_stack(open_fixed, &oa, err)) goto fail;
  if (oa.st != LUA_OK) {
    vn_errf(err, "lua_init", "opening the libraries: %s",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error");
    goto fail;
  }
  lua_settop(L, 0);
  if (cfg->preload && run_preload(e, cfg, err)) goto fail;
  *out = e;
  return 0;
fail:
  sbx_arena_destroy(e->arena);
  free(e);
  return -1;
}

void sbx_lua_free(sbx_lua *e) {
  if (!e) return;
  if (g_active == e) g_active = NULL;
  if (e->arena) sbx_arena_destroy(e->arena);
  free(e->out);
  free(e->val);
  free(e);
}

int sbx_lua_checkpoint(sbx_lua *e, int fd, uint64_t tag, sbx_image_info *info, vn_err *err) {
  if (!e->L) return vn_errf(err, "worker_broken", "the Lua state was lost (failed restore)");
  if (g_active) return vn_errf(err, "image_io", "checkpoint during a call");
  lua_settop(e->L, 0);
  return sbx_arena_checkpoint(e->arena, fd, tag, info, err);
}

int sbx_lua_restore(sbx_lua *e, int fd, unsigned flags, sbx_lua **out, sbx_image_info *info,
                    vn_err *err) {
  if (out) *out = NULL;
  sbx_lua *n = e;
  if (!n) {
    n = calloc(1, sizeof *n);
    if (!n) return vn_errf(err, "image_io", "out of memory");
  }
  sbx_arena *a = sbx_arena_restore(e ? e->arena : NULL, 0, fd, flags, info, err);
  if (!a) {
    if (e && err && err->code && !strcmp(err->code, "arena_lost")) e->arena = NULL, e->L = NULL;
    if (!e) free(n);
    return -1;
  }
  n->arena = a;
  n->L = sbx_arena_root(a);
  if (!n->L) {
    vn_errf(err, "image_corrupt", "the image has no Lua state");
    if (!e) {
      sbx_arena_destroy(a);
      free(n);
    }
    return -1;
  }
  if (out) *out = n;
  return 0;
}

lua_State *sbx_lua_state(sbx_lua *e) {
  return e->L;
}
sbx_arena *sbx_lua_arena(sbx_lua *e) {
  return e->arena;
}

/* ---- layout ---- */

/* The standard (top-down) mmap layout needs a finite stack limit; the
 * kernel's gap below the stack is the same for any limit up to 128 MiB. */
static int stack_limit_ok(void) {
  struct rlimit rl;
  return !getrlimit(RLIMIT_STACK, &rl) && rl.rlim_cur != RLIM_INFINITY &&
         rl.rlim_cur <= ((rlim_t)64 << 20);
}

int sbx_fix_layout_before_exec(void) {
  struct rlimit rl;
  if (!stack_limit_ok() && !getrlimit(RLIMIT_STACK, &rl)) {
    rl.rlim_cur = (rlim_t)8 << 20;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur) rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_STACK, &rl)) return -1;
  }
  int p = personality(0xffffffff);
  if (p < 0 || personality((unsigned long)p | ADDR_NO_RANDOMIZE) < 0) return -1;
  return 0;
}

int sbx_layout_fixed(void) {
  int p = personality(0xffffffff);
  return p >= 0 && (p & ADDR_NO_RANDOMIZE) && stack_limit_ok();
}

int sbx_norandomize_reexec(char **argv, vn_err *err) {
  if (sbx_layout_fixed()) return 0;
  if (sbx_fix_layout_before_exec())
    return vn_errf(err, "sandbox_layout", "cannot set ADDR_NO_RANDOMIZE: %s", strerror(errno));
  execv("/proc/self/exe", argv);
  return vn_errf(err, "sandbox_layout", "re-exec of /proc/self/exe: %s", strerror(errno));
}
