/* test_arena.c - the arena allocator, images, and the in-process Lua engine.
 *
 * The program re-execs itself with ADDR_NO_RANDOMIZE (as workers run), and
 * runs child copies of itself ("--child ...") to restore images and create
 * states in processes that never had them. */
#include "testutil.h"

#include <fcntl.h>
#include <lua.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/arena.h"
#include "sandbox/worker.h"

#define TEST_BASE ((uintptr_t)0x7e8000000000ULL) /* storm arenas, away from the engine's */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64*: the storm must repeat exactly */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static void fill(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 131 + (i >> 8));
}
static int same(const uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(seed + i * 131 + (i >> 8))) return 0;
  return 1;
}

static size_t rand_size(void) {
  uint64_t r = rnd() % 100;
  if (r < 70) return 1 + rnd() % 200; /* Lua's usual: strings, tables, closures */
  if (r < 90) return 1 + rnd() % 4096;
  if (r < 97) return 1 + rnd() % 40000; /* around the small/large boundary */
  return 32769 + rnd() % (600 * 1024);  /* large */
}

typedef struct slot {
  uint8_t *p;
  size_t n;
  uint32_t seed;
} slot;

#define NSLOT 3000

static sbx_arena *storm_arena; /* freed by the teardown when a test fails */

/* Run a storm on a fresh arena; return the image's sha256 via *sum. */
static void storm(uint64_t seed, int ops, uint8_t sum[32], size_t *failures) {
  vn_err e;
  sbx_arena *a = storm_arena = sbx_arena_create(TEST_BASE, (size_t)1 << 30, (size_t)12 << 20, &e);
  assert_non_null(a);
  slot *s = calloc(NSLOT, sizeof *s);
  rng_state = seed;
  size_t live = 0, fails = 0;
  for (int op = 0; op < ops; op++) {
    slot *x = &s[rnd() % NSLOT];
    uint64_t kind = rnd() % 10;
    if (!x->p) {
      size_t n = rand_size();
      x->p = sbx_arena_alloc(a, NULL, LUA_TTABLE, n);
      if (!x->p) {
        fails++;
        continue;
      }
      assert_int_equal((uintptr_t)x->p % 16, 0);
      assert_true((uintptr_t)x->p >= TEST_BASE + SBX_PAGE);
      x->n = n;
      x->seed = (uint32_t)rnd();
      fill(x->p, n, x->seed);
      live += n;
    } else if (kind < 4) {
      assert_true(same(x->p, x->n, x->seed));
      assert_null(sbx_arena_alloc(a, x->p, x->n, 0));
      live -= x->n;
      x->p = NULL;
    } else {
      size_t n = kind < 7 ? rand_size() : 1 + rnd() % (x->n + 1); /* 30% shrink */
      uint8_t *q = sbx_arena_alloc(a, x->p, x->n, n);
      if (!q) {
        assert_true(n > x->n); /* shrinking never fails */
        fails++;
        assert_true(same(x->p, x->n, x->seed));
        continue;
      }
      assert_true(same(q, x->n < n ? x->n : n, x->seed));
      live += n - x->n;
      x->p = q;
      x->n = n;
      x->seed = (uint32_t)rnd();
      fill(q, n, x->seed);
    }
    if (op % 5000 == 0) {
      if (sbx_arena_check(a, &e)) fail_msg("op %d: %s", op, e.msg);
      sbx_arena_stats st;
      sbx_arena_stats_get(a, &st);
      assert_int_equal(st.requested, live);
      assert_true(st.footprint <= st.cap);
      for (int i = 0; i < NSLOT; i++)
        if (s[i].p) assert_true(same(s[i].p, s[i].n, s[i].seed));
    }
  }
  if (sbx_arena_check(a, &e)) fail_msg("end: %s", e.msg);
  /* The image must repeat: hash it through a checkpoint. */
  FILE *f = tmpfile();
  sbx_image_info info;
  assert_int_equal(sbx_arena_checkpoint(a, fileno(f), 0, &info, &e), 0);
  memcpy(sum, info.sha256, 32);
  fclose(f);
  for (int i = 0; i < NSLOT; i++)
    if (s[i].p) sbx_arena_alloc(a, s[i].p, s[i].n, 0);
  sbx_arena_stats st;
  sbx_arena_stats_get(a, &st);
  assert_int_equal(st.live, 0);
  assert_int_equal(st.requested, 0);
  if (sbx_arena_check(a, &e)) fail_msg("after freeing all: %s", e.msg);
  if (failures) *failures = fails;
  free(s);
  sbx_arena_destroy(a);
  storm_arena = NULL;
}

static void test_storm(void **state) {
  uint8_t h1[32], h2[32], h3[32];
  size_t fails;
  double t0 = now_ms();
  storm(42, 100000, h1, &fails);
  printf("# storm: 100000 ops in %.0f ms, %zu allocations refused at the 12 MiB cap\n",
         now_ms() - t0, fails);
  assert_true(fails > 0); /* the cap was reached and survived */
  storm(42, 100000, h2, NULL);
  assert_memory_equal(h1, h2, 32); /* same history, same bytes */
  storm(7, 100000, h3, NULL);
  assert_memory_not_equal(h1, h3, 32);
}

static void test_create_errors(void **state) {
  vn_err e;
  sbx_arena *a = storm_arena = sbx_arena_create(TEST_BASE, (size_t)64 << 20, 0, &e);
  assert_non_null(a);
  assert_null(sbx_arena_create(TEST_BASE, (size_t)64 << 20, 0, &e)); /* occupied */
  assert_string_equal(e.code, "arena_map");
  /* A cap below what one allocation needs: NULL, no crash. */
  sbx_arena_set_cap(a, 2 * SBX_PAGE);
  assert_null(sbx_arena_alloc(a, NULL, 0, 100000));
  void *p = sbx_arena_alloc(a, NULL, 0, 100);
  assert_non_null(p);
  sbx_arena_set_root(a, p);
  assert_ptr_equal(sbx_arena_root(a), p);
  sbx_arena_destroy(a);
  storm_arena = NULL;
}

/* ---- the engine ---- */

static sbx_result run(sbx_lua *L, const char *src, uint64_t gas) {
  sbx_call c = {.payload = src, .payload_len = strlen(src), .gas_limit = gas};
  sbx_result r;
  vn_err e;
  if (sbx_lua_apply(L, &c, &r, &e)) fail_msg("apply: %s", e.msg);
  return r;
}

static void expect_ok(sbx_lua *L, const char *src, const char *want) {
  sbx_result r = run(L, src, 0);
  if (r.status != SBX_OK) fail_msg("%s: %s", src, r.error);
  if (want) assert_string_equal(r.value, want);
  sbx_result_free(&r);
}

/* The engine of the running test: freed by the teardown when a test fails. */
static sbx_lua *cur;

static sbx_lua *engine(size_t cap) {
  sbx_lua_cfg cfg = {.mem_cap = cap};
  vn_err e;
  if (sbx_lua_new(&cfg, &cur, &e)) fail_msg("sbx_lua_new: %s", e.msg);
  return cur;
}

static void done(sbx_lua *L) {
  sbx_lua_free(L);
  cur = NULL;
}

static int teardown(void **state) {
  if (cur) done(cur);
  if (storm_arena) sbx_arena_destroy(storm_arena);
  storm_arena = NULL;
  return 0;
}

static void test_libs(void **state) {
  sbx_lua *L = engine(0);
  expect_ok(L,
            "return tostring(io)..tostring(package)..tostring(debug)"
            "..tostring(dofile)..tostring(loadfile)..tostring(string.dump)..tostring(os.exit)",
            "nilnilnilnilnilnilnil");
  /* collectgarbage: "count" only. */
  expect_ok(L, "return collectgarbage('count') > 10", "true");
  sbx_result g = run(L, "collectgarbage()", 0);
  assert_int_equal(g.status, SBX_ERR_RUNTIME);
  assert_non_null(strstr(g.error, "collectgarbage('collect') is not allowed"));
  sbx_result_free(&g);
  expect_ok(L,
            "return type(table.concat)..type(string.format)..type(math.floor)"
            "..type(utf8.char)..type(coroutine.wrap)",
            "functionfunctionfunctionfunctionfunction");
  /* load: text only; the env argument still works, absent or given. */
  expect_ok(L, "return load('return 1 + 2')()", "3");
  expect_ok(L, "return load('return x', 'n', 'b', {x = 5})()", "5");
  expect_ok(L, "x = 9 return load('return x')()", "9");
  expect_ok(L, "local f, e = load('\\27Lua\\x54\\0') return e",
            "attempt to load a binary chunk (mode is 't')");
  /* No __gc: finalizers run with hooks off. */
  sbx_result r = run(L, "setmetatable({}, {__gc = function() while true do end end})", 0);
  assert_int_equal(r.status, SBX_ERR_RUNTIME);
  assert_non_null(strstr(r.error, "__gc metamethods are not supported"));
  sbx_result_free(&r);
  expect_ok(L, "return getmetatable(setmetatable({}, {__index = {a = 1}})).__index.a", "1");
  /* print goes to the result. */
  r = run(L, "print('a', 1, nil) print('b') return 'v'", 0);
  assert_string_equal(r.output, "a\t1\tnil\nb\n");
  assert_string_equal(r.value, "v");
  sbx_result_free(&r);
  /* Nothing returned, nil returned. */
  r = run(L, "local x = 1", 0);
  assert_int_equal(r.has_value, 0);
  sbx_result_free(&r);
  /* Errors: syntax, runtime, non-string error objects. */
  r = run(L, "return +", 0);
  assert_int_equal(r.status, SBX_ERR_SYNTAX);
  assert_non_null(strstr(r.error, "unexpected symbol"));
  sbx_result_free(&r);
  r = run(L, "error('boom')", 0);
  assert_int_equal(r.status, SBX_ERR_RUNTIME);
  assert_string_equal(r.error, "apply:1: boom");
  sbx_result_free(&r);
  r = run(L, "error(setmetatable({}, {__tostring = function() return 'obj' end}))", 0);
  assert_string_equal(r.error, "obj");
  sbx_result_free(&r);
  r = run(L, "error({})", 0);
  assert_non_null(strstr(r.error, "table: 0x"));
  sbx_result_free(&r);
  done(L);
}

static void test_modules(void **state) {
  char *name = strdup("m"); /* names come from anywhere: copied */
  sbx_module mods[] = {
      {name, "local n = ... loads = (loads or 0) + 1 return {name = n, x = 1}", 0},
      {"quiet", "y = 2", 0},
  };
  mods[0].len = strlen(mods[0].src);
  mods[1].len = strlen(mods[1].src);
  sbx_lua_cfg cfg = {
      .modules = mods, .nmodules = 2, .preload = "M = require('m')", .preload_len = 16};
  vn_err e;
  if (sbx_lua_new(&cfg, &cur, &e)) fail_msg("%s", e.msg);
  free(name);
  sbx_lua *L = cur;
  expect_ok(L, "return require('m').name .. require('.m').x .. loads .. tostring(M == require'm')",
            "m11true");
  expect_ok(L, "return tostring(require('quiet')) .. y", "true2");
  sbx_result r = run(L, "require('nope')", 0);
  assert_int_equal(r.status, SBX_ERR_RUNTIME);
  assert_non_null(strstr(r.error, "module 'nope' not found"));
  sbx_result_free(&r);
  /* A preload error is reported with its Lua message. */
  sbx_lua_cfg bad = {.preload = "error('no luck')", .preload_len = 16};
  sbx_lua *L2;
  done(L);
  assert_int_equal(sbx_lua_new(&bad, &L2, &e), -1);
  assert_string_equal(e.code, "lua_init");
  assert_non_null(strstr(e.msg, "no luck"));
}

static void test_time_and_random(void **state) {
  sbx_lua *L = engine(0);
  const char *src =
      "local r = {} for i = 1, 5 do r[i] = math.random(1000000) end "
      "return os.time() .. ':' .. table.concat(r, ',')";
  sbx_call c = {
      .payload = src, .payload_len = strlen(src), .timestamp = 1712345678901, .seed = {7, 9}};
  sbx_result r1, r2, r3;
  vn_err e;
  assert_int_equal(sbx_lua_apply(L, &c, &r1, &e), 0);
  assert_int_equal(sbx_lua_apply(L, &c, &r2, &e), 0);
  c.seed[1] = 10;
  assert_int_equal(sbx_lua_apply(L, &c, &r3, &e), 0);
  assert_true(!strncmp(r1.value, "1712345678901:", 14));
  assert_string_equal(r1.value, r2.value); /* same seed, same numbers */
  assert_string_not_equal(r1.value, r3.value);
  sbx_result_free(&r1);
  sbx_result_free(&r2);
  sbx_result_free(&r3);
  expect_ok(L, "return os.time{year = 2024, month = 2, day = 29, hour = 0}", "1709164800");
  expect_ok(L, "return os.time{year = 1970, month = 13, day = 1, hour = 0, sec = 5}", "31536005");
  done(L);
}

static void test_gas(void **state) {
  sbx_lua *L = engine(0);
  const char *loops[] = {
      "while true do end",
      /* pcall cannot swallow it */
      "while true do pcall(function() while true do end end) end",
      "for i = 1, 100 do pcall(function() while true do end end) end return 'escaped'",
      /* nor can a coroutine */
      "local co = coroutine.wrap(function() while true do end end) pcall(co) "
      "return 'escaped'",
      "local t = setmetatable({}, {__index = function(t, k) while true do end end}) "
      "for i = 1, 10 do pcall(function() return t.x end) end return 'escaped'",
      /* nor xpcall's handler */
      "xpcall(function() while true do end end, function(m) return 'handled' end) "
      "return 'escaped'",
  };
  for (size_t i = 0; i < sizeof loops / sizeof *loops; i++) {
    double t0 = now_ms();
    sbx_result r = run(L, loops[i], 1000000);
    if (r.status != SBX_ERR_GAS)
      fail_msg("%s: status %s (%s)", loops[i], sbx_status_name(r.status),
               r.error ? r.error : r.value);
    assert_true(r.gas_used > 1000000 && r.gas_used <= 1000000 + SBX_GAS_TICK);
    assert_non_null(strstr(r.error, "gas exhausted: 1001000 instructions used (limit 1000000)"));
    if (i == 0) printf("# gas: 1e6 instructions exhausted in %.1f ms\n", now_ms() - t0);
    sbx_result_free(&r);
    expect_ok(L, "return 6 * 7", "42"); /* usable afterwards */
  }
  /* Counting is deterministic. */
  const char *work = "local s = 0 for i = 1, 123456 do s = s + i % 7 end return s";
  sbx_result a = run(L, work, 0), b = run(L, work, 0);
  assert_true(a.gas_used > 100000);
  assert_int_equal(a.gas_used, b.gas_used);
  printf("# gas: loop of 123456 used %llu\n", (unsigned long long)a.gas_used);
  sbx_result_free(&a);
  sbx_result_free(&b);
  done(L);
}

static void test_memory_cap(void **state) {
  sbx_lua *L = engine((size_t)32 << 20);
  const char *bombs[] = {
      "return string.rep('x', 1 << 30)",
      "local s = 'x' while true do s = s .. s end",
      "local t = {} for i = 1, 1e8 do t[i] = i end",
      "local t = {} for i = 1, 1e8 do t[#t + 1] = ('y'):rep(100) .. i end",
  };
  for (size_t i = 0; i < sizeof bombs / sizeof *bombs; i++) {
    sbx_result r = run(L, bombs[i], 0);
    if (r.status != SBX_ERR_MEMORY)
      fail_msg("%s: status %s (%s)", bombs[i], sbx_status_name(r.status), r.error ? r.error : "");
    assert_string_equal(r.error, "not enough memory");
    assert_true(r.footprint <= (size_t)32 << 20);
    sbx_result_free(&r);
    expect_ok(L, "local t = {} for i = 1, 1000 do t[i] = i end return #t", "1000");
  }
  /* A script may catch a memory error and go on. */
  expect_ok(L, "local ok, e = pcall(string.rep, 'x', 1 << 30) return tostring(ok) .. e",
            "falsenot enough memory");
  vn_err e;
  if (sbx_arena_check(sbx_lua_arena(L), &e)) fail_msg("%s", e.msg);
  done(L);
}

static void test_recursion(void **state) {
  sbx_lua *L = engine(0);
  sbx_result r = run(L, "local function f(n) return 1 + f(n + 1) end return f(1)", 0);
  assert_int_equal(r.status, SBX_ERR_RUNTIME);
  assert_non_null(strstr(r.error, "stack overflow"));
  sbx_result_free(&r);
  r = run(L,
          "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) "
          "return t.x",
          0);
  assert_int_equal(r.status, SBX_ERR_RUNTIME);
  assert_non_null(strstr(r.error, "stack overflow"));
  sbx_result_free(&r);
  r = run(L, "local function f() return pcall(f) end return tostring(f())", 0);
  assert_true(r.status == SBX_OK || r.status == SBX_ERR_RUNTIME);
  sbx_result_free(&r);
  expect_ok(L, "return 'fine'", "fine");
  done(L);
}

/* ---- images and other processes ---- */

static const char *BUILD =
    "counter = 0\n"
    "local function mk(n) local acc = n return function(x) acc = acc + x return acc end end\n"
    "adder = mk(100)\n"
    "data = {} for i = 1, 3000 do data['k' .. i] = {i, tostring(i), i * 1.5} end\n"
    "objs = {} for i = 1, 50 do objs[{}] = i end\n"
    "co = coroutine.create(function(a)\n"
    "  local sum = a\n"
    "  while true do local x = coroutine.yield(sum) sum = sum + x * 2 end\n"
    "end)\n"
    "coroutine.resume(co, 1)\n"
    "return 'built'";

static const char *CONTINUE =
    "local r = {}\n"
    "for i = 1, 5 do local ok, v = coroutine.resume(co, i) r[#r + 1] = tostring(v) end\n"
    "r[#r + 1] = adder(5) .. '/' .. adder(7)\n"
    "local keys = {} for k in pairs(data) do keys[#keys + 1] = k end\n"
    "r[#r + 1] = table.concat(keys, ',', 1, 15)\n"
    "local vals = {} for k, v in pairs(objs) do vals[#vals + 1] = v end\n"
    "r[#r + 1] = table.concat(vals, ',')\n"
    "r[#r + 1] = tostring(coroutine.status(co)) .. #data .. collectgarbage('count') // 1\n"
    "return table.concat(r, ';')";

static const char *PAIRS =
    "local t = {} for i = 1, 2000 do t['key' .. i] = i end\n"
    "local o = {} for k in pairs(t) do o[#o + 1] = k end\n"
    "local u = {} for i = 1, 100 do u[{}] = i end\n"
    "local p = {} for _, v in pairs(u) do p[#p + 1] = v end\n"
    "return table.concat(o, ',') .. '|' .. table.concat(p, ',')";

static void hex(const uint8_t *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* Run this program as a child with args; return its stdout (malloc'd). */
static char *child(const char *a1, const char *a2, const char *a3, int *status) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    execl("/proc/self/exe", "test_arena", "--child", a1, a2 ? a2 : "", a3 ? a3 : "", NULL);
    _exit(127);
  }
  close(p[1]);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  ssize_t r;
  while ((r = read(p[0], buf + n, cap - n - 1)) > 0) {
    n += (size_t)r;
    if (n + 1 == cap) buf = realloc(buf, cap *= 2);
  }
  buf[n] = 0;
  close(p[0]);
  waitpid(pid, status, 0);
  return buf;
}

/* Child modes: "pairs" (fresh state, print PAIRS), "restore IMAGE OUT"
 * (restore IMAGE, print CONTINUE's value, checkpoint to OUT, print its hash). */
static int child_main(int argc, char **argv) {
  vn_err e;
  if (!strcmp(argv[2], "pairs")) {
    sbx_lua *L;
    if (sbx_lua_new(NULL, &L, &e)) return printf("ERR %s\n", e.msg), 1;
    sbx_call c = {.payload = PAIRS, .payload_len = strlen(PAIRS)};
    sbx_result r;
    if (sbx_lua_apply(L, &c, &r, &e) || r.status) return printf("ERR\n"), 1;
    printf("%s", r.value);
    sbx_result_free(&r);
    sbx_lua_free(L);
    return 0;
  }
  if (!strcmp(argv[2], "restore")) {
    int fd = open(argv[3], O_RDONLY);
    sbx_lua *L;
    double t0 = now_ms();
    if (sbx_lua_restore(NULL, fd, SBX_RESTORE_VERIFY, &L, NULL, &e))
      return printf("ERR %s: %s\n", e.code, e.msg), 1;
    double t1 = now_ms();
    sbx_call c = {.payload = CONTINUE, .payload_len = strlen(CONTINUE)};
    sbx_result r;
    if (sbx_lua_apply(L, &c, &r, &e) || r.status)
      return printf("ERR apply %s\n", r.error ? r.error : e.msg), 1;
    int out = open(argv[4], O_RDWR | O_CREAT | O_TRUNC, 0600);
    sbx_image_info info;
    if (sbx_lua_checkpoint(L, out, 0, &info, &e)) return printf("ERR %s\n", e.msg), 1;
    char h[65];
    hex(info.sha256, 32, h);
    printf("%s\n%s\n%.3f\n", r.value, h, t1 - t0);
    sbx_result_free(&r);
    sbx_lua_free(L);
    close(out);
    close(fd);
    return 0;
  }
  return 2;
}

static void test_pairs_across_processes(void **state) {
  int st1, st2;
  char *a = child("pairs", NULL, NULL, &st1), *b = child("pairs", NULL, NULL, &st2);
  assert_int_equal(st1, 0);
  assert_int_equal(st2, 0);
  assert_true(strlen(a) > 1000);
  assert_string_equal(a, b);
  /* And the same as here. */
  sbx_lua *L = engine(0);
  sbx_result r = run(L, PAIRS, 0);
  assert_string_equal(r.value, a);
  /* Not trivially sorted: the order is the hash's. */
  assert_true(strncmp(a, "key1,key2,key3,", 15));
  sbx_result_free(&r);
  done(L);
  free(a);
  free(b);
}

static char tmpdir[64];

static void setup_dir(void) {
  if (tmpdir[0]) return;
  strcpy(tmpdir, "/tmp/vn_arena_XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
}

static void test_checkpoint_restore(void **state) {
  setup_dir();
  char img[128], after_here[128], after_child[128];
  snprintf(img, sizeof img, "%s/img", tmpdir);
  snprintf(after_here, sizeof after_here, "%s/after_here", tmpdir);
  snprintf(after_child, sizeof after_child, "%s/after_child", tmpdir);
  sbx_lua *L = engine(0);
  expect_ok(L, BUILD, "built");
  int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
  sbx_image_info info;
  vn_err e;
  assert_int_equal(sbx_lua_checkpoint(L, fd, 77, &info, &e), 0);
  close(fd);
  assert_int_equal(info.tag, 77);
  assert_int_equal(info.base, SBX_ARENA_BASE);
  assert_int_equal(info.image_len % SBX_PAGE, 0);
  assert_true(info.layout.exe.len > 0 && info.layout.lua.len > 0);
  /* The uninterrupted run. */
  sbx_result r = run(L, CONTINUE, 0);
  assert_int_equal(r.status, SBX_OK);
  fd = open(after_here, O_RDWR | O_CREAT | O_TRUNC, 0600);
  sbx_image_info info2;
  assert_int_equal(sbx_lua_checkpoint(L, fd, 0, &info2, &e), 0);
  close(fd);
  /* The restored run, in a process that never had the state. */
  int st;
  char *out = child("restore", img, after_child, &st);
  assert_int_equal(st, 0);
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  *nl = 0;
  assert_string_equal(out, r.value);
  char h[65];
  hex(info2.sha256, 32, h);
  char *nl2 = strchr(nl + 1, '\n');
  *nl2 = 0;
  assert_string_equal(nl + 1, h); /* byte-identical heaps afterwards */
  printf("# restore of a %llu KiB image in a new process (verified): %s ms\n",
         (unsigned long long)info.image_len >> 10, nl2 + 1);
  printf("# continued: %.80s...\n", r.value);
  free(out);
  sbx_result_free(&r);
  done(L);
}

static void corrupt(const char *path, off_t off) {
  int fd = open(path, O_RDWR);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, off), 1);
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static void copy(const char *from, const char *to) {
  size_t n = 0;
  uint8_t *b = tu_read_file(from, &n);
  FILE *f = fopen(to, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
  free(b);
}

static void expect_refused(const char *path, const char *code, const char *words) {
  int fd = open(path, O_RDONLY);
  vn_err e = {0};
  assert_int_equal(sbx_image_check(fd, 1, NULL, &e), -1);
  close(fd);
  assert_string_equal(e.code, code);
  if (!strstr(e.msg, words)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, words);
  printf("# refused (%s): %s\n", code, e.msg);
}

static void test_image_refused(void **state) {
  setup_dir();
  char good[128], bad[128];
  snprintf(good, sizeof good, "%s/good", tmpdir);
  snprintf(bad, sizeof bad, "%s/bad", tmpdir);
  sbx_lua *L = engine(0);
  expect_ok(L, "x = 41", NULL);
  int fd = open(good, O_RDWR | O_CREAT | O_TRUNC, 0600);
  vn_err e;
  assert_int_equal(sbx_lua_checkpoint(L, fd, 0, NULL, &e), 0);
  close(fd);
  fd = open(good, O_RDONLY);
  assert_int_equal(sbx_image_check(fd, 1, NULL, &e), 0);
  close(fd);
  /* One flipped bit in the heap. */
  copy(good, bad);
  corrupt(bad, SBX_IMAGE_HDR_SIZE + 5000);
  expect_refused(bad, "image_corrupt", "sha256 does not match");
  /* Another executable (build id byte 0 at offset 80). */
  copy(good, bad);
  corrupt(bad, 80);
  expect_refused(bad, "image_build_mismatch", "executable build");
  /* Another liblua (its id starts at 120). */
  copy(good, bad);
  corrupt(bad, 120);
  expect_refused(bad, "image_build_mismatch", "liblua build");
  /* Same builds at other addresses (exe_base at 56). */
  copy(good, bad);
  corrupt(bad, 58);
  expect_refused(bad, "image_layout_mismatch", "ADDR_NO_RANDOMIZE");
  /* Not an image; cut short; a newer format. */
  copy(good, bad);
  corrupt(bad, 0);
  expect_refused(bad, "image_corrupt", "bad magic");
  copy(good, bad);
  assert_int_equal(truncate(bad, 8192), 0);
  expect_refused(bad, "image_corrupt", "inconsistent");
  copy(good, bad);
  corrupt(bad, 8);
  expect_refused(bad, "image_version", "format version");
  /* A refused restore leaves the state alone. */
  copy(good, bad);
  corrupt(bad, SBX_IMAGE_HDR_SIZE + 100);
  expect_ok(L, "x = 42", NULL);
  fd = open(bad, O_RDONLY);
  assert_int_equal(sbx_lua_restore(L, fd, SBX_RESTORE_VERIFY, NULL, NULL, &e), -1);
  close(fd);
  expect_ok(L, "return x", "42");
  /* And a good one replaces it in place. */
  fd = open(good, O_RDONLY);
  assert_int_equal(sbx_lua_restore(L, fd, SBX_RESTORE_VERIFY, NULL, NULL, &e), 0);
  close(fd);
  expect_ok(L, "return x", "41");
  if (sbx_arena_check(sbx_lua_arena(L), &e)) fail_msg("%s", e.msg);
  done(L);
}

static void test_image_sizes(void **state) {
  setup_dir();
  char path[128];
  snprintf(path, sizeof path, "%s/sz", tmpdir);
  static const int mib[] = {1, 16};
  for (size_t i = 0; i < 2; i++) {
    sbx_lua *L = engine(0);
    char src[200];
    snprintf(src, sizeof src,
             "big = {} for i = 1, %d do big[i] = ('x'):rep(100) .. i end "
             "return collectgarbage('count') // 1024",
             mib[i] * 4000);
    expect_ok(L, src, NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    vn_err e;
    sbx_image_info info;
    double t0 = now_ms();
    assert_int_equal(sbx_lua_checkpoint(L, fd, 0, &info, &e), 0);
    double t1 = now_ms();
    assert_int_equal(sbx_lua_restore(L, fd, 0, NULL, NULL, &e), 0);
    double t2 = now_ms();
    assert_int_equal(sbx_lua_restore(L, fd, SBX_RESTORE_VERIFY, NULL, NULL, &e), 0);
    double t3 = now_ms();
    expect_ok(L, "return #big", NULL);
    printf("# image %.1f MiB: checkpoint %.2f ms, restore %.3f ms (lazy), %.2f ms verified\n",
           info.image_len / 1048576.0, t1 - t0, t2 - t1, t3 - t2);
    close(fd);
    done(L);
  }
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "--child")) return child_main(argc, argv);
  vn_err e;
  if (sbx_norandomize_reexec(argv, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_storm, teardown),
      cmocka_unit_test_teardown(test_create_errors, teardown),
      cmocka_unit_test_teardown(test_libs, teardown),
      cmocka_unit_test_teardown(test_modules, teardown),
      cmocka_unit_test_teardown(test_time_and_random, teardown),
      cmocka_unit_test_teardown(test_gas, teardown),
      cmocka_unit_test_teardown(test_memory_cap, teardown),
      cmocka_unit_test_teardown(test_recursion, teardown),
      cmocka_unit_test_teardown(test_pairs_across_processes, teardown),
      cmocka_unit_test_teardown(test_checkpoint_restore, teardown),
      cmocka_unit_test_teardown(test_image_refused, teardown),
      cmocka_unit_test_teardown(test_image_sizes, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  if (tmpdir[0]) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (!getenv("KEEP") && system(cmd)) rc = rc ? rc : 1;
  }
  return rc;
}
