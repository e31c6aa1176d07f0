/* test_worker.c - the zygote and its sandboxed workers, driven like the node
 * will drive them: real processes, real namespaces and seccomp, real kills.
 *
 * This program is also the zygote's executable: main() hands over to
 * sbx_zygote_main() first, with hooks that add a __test table of C
 * functions (a forbidden syscall, a crash, a C-level busy loop, getpid). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/worker.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Sanitizer builds: let a worker's SIGSEGV kill it as in production (ASan's
 * own handler would make system calls the seccomp filter forbids). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "handle_segv=0";
}

/* ---- the test-only host functions (run inside workers) ---- */

static int t_open(lua_State *L) {
  lua_pushinteger(L, open(luaL_checkstring(L, 1), O_RDONLY)); /* seccomp: killed here */
  return 1;
}
static int t_crash(lua_State *L) {
  volatile int *p = (volatile int *)(uintptr_t)lua_tointeger(L, 1); /* 0: NULL */
  *p = 1;
  return 0;
}
static int t_spin(lua_State *L) {
  double end = now_ms() + luaL_checknumber(L, 1);
  while (now_ms() < end) {
  }
  return 0;
}
static int t_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}
static void open_test(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, t_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, t_crash);
  lua_setfield(L, -2, "crash");
  lua_pushcfunction(L, t_spin);
  lua_setfield(L, -2, "spin");
  lua_pushcfunction(L, t_getpid);
  lua_setfield(L, -2, "getpid");
  lua_setglobal(L, "__test");
}
static const sbx_hooks hooks = {open_test};

/* ---- helpers ---- */

static const char *PRELOAD =
    "Inbox = {}\n"
    "function handle(m) Inbox[#Inbox + 1] = m return 'got ' .. m .. ' #' .. #Inbox end\n";

static sbx_zygote *zyg;
static char tmpdir[64];

static sbx_zygote *start(const sbx_zygote_cfg *extra) {
  sbx_zygote_cfg cfg = {.preload = PRELOAD,
                        .preload_len = strlen(PRELOAD),
                        .mem_cap = (size_t)64 << 20,
                        .ns = SBX_NS_ALL,
                        .timeout_ms = 20000};
  if (extra) cfg = *extra;
  sbx_zygote *z;
  vn_err e;
  if (sbx_zygote_start(&cfg, &z, &e)) fail_msg("zygote: %s", e.msg);
  return z;
}

static int setup(void **state) {
  strcpy(tmpdir, "/tmp/vn_worker_XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  zyg = start(NULL);
  if (*sbx_zygote_note(zyg)) printf("# zygote note: %s\n", sbx_zygote_note(zyg));
  return 0;
}

static int teardown(void **state) {
  sbx_zygote_stop(zyg);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) ? -1 : 0;
}

static sbx_worker *spawn(sbx_zygote *z) {
  sbx_worker *w;
  vn_err e;
  if (sbx_worker_spawn(z, &w, &e)) fail_msg("spawn: %s", e.msg);
  return w;
}

static sbx_result call(sbx_worker *w, const char *entry, const char *payload, uint64_t gas) {
  sbx_call c = {
      .entry = entry, .payload = payload, .payload_len = strlen(payload), .gas_limit = gas};
  sbx_result r;
  vn_err e;
  if (sbx_worker_apply(w, &c, &r, &e)) fail_msg("apply %s: %s: %s", payload, e.code, e.msg);
  return r;
}

static void expect(sbx_worker *w, const char *entry, const char *payload, const char *want) {
  sbx_result r = call(w, entry, payload, 0);
  if (r.status != SBX_OK) fail_msg("%s: %s", payload, r.error);
  if (want) assert_string_equal(r.value, want);
  sbx_result_free(&r);
}

/* apply that must fail with -1: returns err (code checked by the caller). */
static vn_err expect_lost(sbx_worker *w, const char *payload, uint64_t gas, double *ms) {
  sbx_call c = {.payload = payload, .payload_len = strlen(payload), .gas_limit = gas};
  sbx_result r;
  vn_err e = {0};
  double t0 = now_ms();
  int rc = sbx_worker_apply(w, &c, &r, &e);
  if (ms) *ms = now_ms() - t0;
  if (rc != -1)
    fail_msg("%s: expected the worker to be lost, got %s", payload, sbx_status_name(r.status));
  assert_false(sbx_worker_alive(w));
  return e;
}

/* ---- tests ---- */

static void test_basic(void **state) {
  sbx_worker *w = spawn(zyg);
  printf("# worker %ld: namespaces %#x, seccomp %d\n", (long)sbx_worker_pid(w), sbx_worker_ns(w),
         sbx_worker_seccomp(w));
  assert_true(sbx_worker_seccomp(w));
  expect(w, NULL, "return 1 + 1", "2");
  expect(w, "handle", "hello", "got hello #1");
  expect(w, "handle", "again", "got again #2");
  sbx_result r = call(w, NULL, "print('out', 1) return #Inbox", 0);
  assert_string_equal(r.output, "out\t1\n");
  assert_string_equal(r.value, "2");
  sbx_result_free(&r);
  if (sbx_worker_ns(w) & SBX_NS_PID) expect(w, NULL, "return __test.getpid()", "1");
  /* Errors stay results. */
  r = call(w, "nosuch", "", 0);
  assert_int_equal(r.status, SBX_ERR_RUNTIME);
  assert_string_equal(r.error, "entry 'nosuch' is not a function");
  sbx_result_free(&r);
  r = call(w, NULL, "return (", 0);
  assert_int_equal(r.status, SBX_ERR_SYNTAX);
  sbx_result_free(&r);
  /* Large payloads and values cross intact. */
  size_t n = 3 << 20;
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
  big[n] = 0;
  r = call(w, "handle", big, 0);
  assert_int_equal(r.value_len, n + 7);
  assert_memory_equal(r.value + 4, big, n);
  sbx_result_free(&r);
  free(big);
  sbx_worker_close(w);
}

static void test_isolation(void **state) {
  sbx_worker *a = spawn(zyg), *b = spawn(zyg);
  expect(a, "handle", "x", "got x #1");
  expect(a, NULL, "secret = 42", NULL);
  expect(b, "handle", "y", "got y #1"); /* each has its own copy of the zygote's state */
  expect(b, NULL, "return tostring(secret)", "nil");
  sbx_worker_close(a);
  sbx_worker_close(b);
}

static void test_script_errors(void **state) {
  sbx_worker *w = spawn(zyg);
  sbx_result r = call(w, NULL, "while true do end", 2000000);
  assert_int_equal(r.status, SBX_ERR_GAS);
  assert_non_null(strstr(r.error, "gas exhausted"));
  assert_true(r.gas_used > 2000000);
  sbx_result_free(&r);
  expect(w, "handle", "after gas", "got after gas #1");
  r = call(w, NULL, "local s = string.rep('x', 1 << 30)", 0);
  assert_int_equal(r.status, SBX_ERR_MEMORY);
  assert_string_equal(r.error, "not enough memory");
  sbx_result_free(&r);
  r = call(w, NULL, "local t = {} for i = 1, 1e9 do t[i] = {i} end", 0);
  if (r.status != SBX_ERR_MEMORY) fail_msg("%s: %s", sbx_status_name(r.status), r.error);
  sbx_result_free(&r);
  expect(w, "handle", "after memory", "got after memory #2");
  /* Under a 64 MiB cap the Lua stack may hit the cap before its own limit. */
  r = call(w, NULL, "local function f() return 1 + f() end return f()", 0);
  assert_true((r.status == SBX_ERR_RUNTIME && strstr(r.error, "stack overflow")) ||
              r.status == SBX_ERR_MEMORY);
  sbx_result_free(&r);
  expect(w, "handle", "after recursion", "got after recursion #3");
  sbx_worker_close(w);
}

static void *killer(void *arg) {
  usleep(200 * 1000);
  kill(*(pid_t *)arg, SIGKILL);
  return NULL;
}

static void test_killed_mid_call(void **state) {
  sbx_worker *w = spawn(zyg);
  pid_t pid = sbx_worker_pid(w);
  pthread_t t;
  pthread_create(&t, NULL, killer, &pid);
  double ms;
  vn_err e = expect_lost(w, "while true do end", (uint64_t)1 << 50, &ms);
  pthread_join(t, NULL);
  assert_string_equal(e.code, "worker_crashed");
  assert_non_null(strstr(e.msg, "signal 9 (SIGKILL)"));
  assert_true(ms < 2000);
  printf("# SIGKILL mid-call reported after %.0f ms: %s\n", ms, e.msg);
  /* Dead is dead, and says so at once. */
  sbx_call c = {.payload = "return 1", .payload_len = 8};
  sbx_result r;
  assert_int_equal(sbx_worker_apply(w, &c, &r, &e), -1);
  assert_string_equal(e.code, "worker_dead");
  sbx_worker_close(w);
}

static void test_crash(void **state) {
  sbx_worker *w = spawn(zyg);
  vn_err e = expect_lost(w, "__test.crash(0)", 0, NULL);
  assert_string_equal(e.code, "worker_crashed");
  assert_non_null(strstr(e.msg, "SIGSEGV"));
  printf("# %s\n", e.msg);
  sbx_worker_close(w);
}

static void test_seccomp(void **state) {
  sbx_worker *w = spawn(zyg);
  expect(w, NULL, "return 'still fine'", "still fine");
  vn_err e = expect_lost(w, "return __test.open('/etc/passwd')", 0, NULL);
  assert_string_equal(e.code, "worker_seccomp");
  printf("# %s\n", e.msg);
  sbx_worker_close(w);
}

static void test_timeout(void **state) {
  sbx_worker *w = spawn(zyg);
  sbx_worker_set_timeout(w, 300);
  expect(w, NULL, "__test.spin(50) return 'quick'", "quick");
  double ms;
  vn_err e = expect_lost(w, "__test.spin(60000)", 0, &ms);
  assert_string_equal(e.code, "worker_timeout");
  assert_true(ms >= 300 && ms < 2000);
  printf("# C-level loop: %s (after %.0f ms)\n", e.msg, ms);
  sbx_worker_close(w);
}

static const char *BUILD =
    "counter = 0\n"
    "local function mk(n) local acc = n return function(x) acc = acc + x return acc end end\n"
    "adder = mk(100)\n"
    "data = {} for i = 1, 3000 do data['k' .. i] = {i, tostring(i)} end\n"
    "co = coroutine.create(function(a)\n"
    "  local sum = a\n"
    "  while true do local x = coroutine.yield(sum) sum = sum + x * 2 end\n"
    "end)\n"
    "coroutine.resume(co, 1)\n"
    "return 'built'";

static const char *CONTINUE =
    "local r = {}\n"
    "for i = 1, 5 do local ok, v = coroutine.resume(co, i) r[#r + 1] = tostring(v) end\n"
    "r[#r + 1] = adder(5) .. '/' .. adder(7) .. '/' .. #Inbox\n"
    "local keys = {} for k in pairs(data) do keys[#keys + 1] = k end\n"
    "r[#r + 1] = table.concat(keys, ',', 1, 15)\n"
    "return table.concat(r, ';')";

static int open_file(const char *name) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  int fd = open(path, O_RDWR | O_CREAT, 0600);
  assert_true(fd >= 0);
  return fd;
}

static void test_checkpoint_restore(void **state) {
  sbx_worker *a = spawn(zyg), *b = spawn(zyg);
  vn_err e;
  expect(a, "handle", "m1", NULL);
  expect(a, NULL, BUILD, "built");
  int fd = open_file("img");
  sbx_image_info info, ia, ib;
  assert_int_equal(sbx_worker_checkpoint(a, fd, 5, &info, &e), 0);
  assert_int_equal(info.tag, 5);
  /* A goes on uninterrupted. */
  sbx_result ra = call(a, NULL, CONTINUE, 0);
  assert_int_equal(ra.status, SBX_OK);
  int fa = open_file("a2"), fb = open_file("b2");
  assert_int_equal(sbx_worker_checkpoint(a, fa, 0, &ia, &e), 0);
  /* B, a fresh worker, takes A's image and goes on. */
  expect(b, "handle", "b's own", "got b's own #1");
  if (sbx_worker_restore(b, fd, SBX_RESTORE_VERIFY, NULL, &e)) fail_msg("%s", e.msg);
  sbx_result rb = call(b, NULL, CONTINUE, 0);
  assert_int_equal(rb.status, SBX_OK);
  assert_string_equal(ra.value, rb.value);
  assert_int_equal(ra.gas_used, rb.gas_used);
  assert_int_equal(sbx_worker_checkpoint(b, fb, 0, &ib, &e), 0);
  assert_memory_equal(ia.sha256, ib.sha256, 32); /* byte-identical heaps */
  printf("# restored worker continued: %.60s...\n", rb.value);
  sbx_result_free(&ra);
  sbx_result_free(&rb);
  /* The node can check an image against the zygote without a worker. */
  sbx_image_info hdr;
  assert_int_equal(sbx_image_read(fd, &hdr, &e), 0);
  assert_int_equal(sbx_image_fits(&hdr, sbx_zygote_layout(zyg), &e), 0);
  if (sbx_layout_self()->exe_base != sbx_zygote_layout(zyg)->exe_base) /* ASLR here */
    assert_int_equal(sbx_image_fits(&hdr, sbx_layout_self(), &e), -1);
  /* Huge error messages are cut. */
  sbx_result big = call(a, NULL, "error(string.rep('x', 1e6))", 0);
  assert_int_equal(big.status, SBX_ERR_RUNTIME);
  assert_int_equal(strlen(big.error), SBX_ERROR_MAX + 3);
  sbx_result_free(&big);
  /* A corrupted image is refused and the worker keeps its state. */
  uint8_t byte;
  assert_int_equal(pread(fd, &byte, 1, SBX_IMAGE_HDR_SIZE + 3000), 1);
  byte ^= 1;
  assert_int_equal(pwrite(fd, &byte, 1, SBX_IMAGE_HDR_SIZE + 3000), 1);
  sbx_worker *c = spawn(zyg);
  expect(c, "handle", "c1", "got c1 #1");
  assert_int_equal(sbx_worker_restore(c, fd, SBX_RESTORE_VERIFY, NULL, &e), -1);
  assert_string_equal(e.code, "image_corrupt");
  assert_true(sbx_worker_alive(c));
  expect(c, "handle", "c2", "got c2 #2");
  close(fd);
  close(fa);
  close(fb);
  sbx_worker_close(a);
  sbx_worker_close(b);
  sbx_worker_close(c);
}

static const char *PAIRS =
    "local t = {} for i = 1, 2000 do t['key' .. i] = i end\n"
    "local o = {} for k in pairs(t) do o[#o + 1] = k end\n"
    "local u = {} for i = 1, 100 do u[{}] = i end\n"
    "local p = {} for _, v in pairs(u) do p[#p + 1] = v end\n"
    "return table.concat(o, ',') .. '|' .. table.concat(p, ',')";

static void test_pairs_two_zygotes(void **state) {
  sbx_zygote *z2 = start(NULL);
  sbx_worker *a = spawn(zyg), *b = spawn(z2);
  sbx_result ra = call(a, NULL, PAIRS, 0), rb = call(b, NULL, PAIRS, 0);
  assert_int_equal(ra.status, SBX_OK);
  assert_string_equal(ra.value, rb.value);
  assert_true(strncmp(ra.value, "key1,key2,key3,", 15));
  sbx_result_free(&ra);
  sbx_result_free(&rb);
  sbx_worker_close(a);
  sbx_worker_close(b);
  sbx_zygote_stop(z2);
}

static void test_zygote_errors(void **state) {
  sbx_zygote_cfg cfg = {.preload = "error('broken library')", .preload_len = 23};
  sbx_zygote *z;
  vn_err e;
  assert_int_equal(sbx_zygote_start(&cfg, &z, &e), -1);
  assert_string_equal(e.code, "zygote_start");
  assert_non_null(strstr(e.msg, "broken library"));
  cfg.exe = "/nonexistent/vmnode";
  cfg.preload = NULL;
  assert_int_equal(sbx_zygote_start(&cfg, &z, &e), -1);
  printf("# %s\n", e.msg);
}

/* Without root: namespaces through a user namespace, or none, with a note. */
static void test_unprivileged(void **state) {
  if (getuid() != 0) skip(); /* needs root to become someone else */
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 1);
    if (setgid(65534) || setuid(65534)) _exit(2);
    sbx_zygote_cfg cfg = {.preload = PRELOAD, .preload_len = strlen(PRELOAD), .ns = SBX_NS_ALL};
    sbx_zygote *z;
    sbx_worker *w;
    vn_err e;
    if (sbx_zygote_start(&cfg, &z, &e)) {
      printf("error: %s", e.msg);
      fflush(stdout);
      _exit(strstr(e.msg, "could not be executed") ? 5 : 3); /* 5: binary not reachable */
    }
    if (sbx_worker_spawn(z, &w, &e)) {
      printf("error: %s", e.msg);
      fflush(stdout);
      _exit(3);
    }
    sbx_call c = {.entry = "handle", .payload = "u", .payload_len = 1};
    sbx_result r;
    if (sbx_worker_apply(w, &c, &r, &e) || strcmp(r.value, "got u #1")) _exit(4);
    printf("ns %#x seccomp %d note '%s'", sbx_worker_ns(w), sbx_worker_seccomp(w),
           sbx_zygote_note(z));
    fflush(stdout);
    sbx_worker_close(w);
    sbx_zygote_stop(z);
    _exit(0);
  }
  close(p[1]);
  char out[512] = {0};
  ssize_t n = read(p[0], out, sizeof out - 1);
  close(p[0]);
  int st;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 5) {
    printf("# nobody cannot execute this test binary here: skipped (%s)\n", out);
    skip();
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st)) fail_msg("unprivileged run: status %d: %s", st, out);
  assert_true(n > 0);
  printf("# as nobody: %s\n", out);
}

static int gone(pid_t pid, int ms) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return errno == ESRCH;
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  int r = poll(&pf, 1, ms);
  close(fd);
  return r == 1;
}

/* The node dies: its zygote dies, and the zygote's workers with it. */
static void test_node_death(void **state) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t node = fork();
  if (node == 0) {
    close(p[0]);
    sbx_zygote *z = start(NULL);
    sbx_worker *w = spawn(z);
    pid_t pids[2] = {sbx_zygote_pid(z), sbx_worker_pid(w)};
    if (write(p[1], pids, sizeof pids) != sizeof pids) _exit(1);
    pause();
    _exit(0);
  }
  close(p[1]);
  pid_t pids[2];
  assert_int_equal(read(p[0], pids, sizeof pids), sizeof pids);
  close(p[0]);
  assert_false(gone(pids[0], 0));
  assert_false(gone(pids[1], 0));
  double t0 = now_ms();
  kill(node, SIGKILL);
  waitpid(node, NULL, 0);
  assert_true(gone(pids[0], 2000));
  assert_true(gone(pids[1], 2000));
  printf("# node killed: zygote and worker gone after %.1f ms\n", now_ms() - t0);
}

/* ---- the AO library from runtime/lua, when the tree has it ---- */

static int load_modules(sbx_module *mods, size_t max, size_t *n) {
  DIR *d = opendir("runtime/lua");
  if (!d) return -1;
  struct dirent *de;
  *n = 0;
  while ((de = readdir(d)) && *n < max) {
    size_t l = strlen(de->d_name);
    if (l < 5 || strcmp(de->d_name + l - 4, ".lua")) continue;
    char path[300];
    snprintf(path, sizeof path, "runtime/lua/%s", de->d_name);
    mods[*n].name = strndup(de->d_name, l - 4);
    mods[*n].src = (char *)tu_read_file(path, &mods[*n].len);
    (*n)++;
  }
  closedir(d);
  return 0;
}

static const char *AO_PRELOAD =
    "local process = require('process')\n"
    "function vmnode_handle(s)\n"
    "  local i = s:find('\\0', 1, true)\n"
    "  return process.handle_json(s:sub(1, i - 1), s:sub(i + 1))\n"
    "end\n";

static long smaps(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1, total = 0;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':') total += atol(line + kl + 1), v = total;
  fclose(f);
  return v;
}

static void print_memory(const char *what, pid_t pid) {
  printf("# %s: RSS %ld KiB, PSS %ld KiB, private dirty %ld KiB\n", what, smaps(pid, "Rss"),
         smaps(pid, "Pss"), smaps(pid, "Private_Dirty"));
}

static void test_ao_library(void **state) {
  sbx_module mods[32];
  size_t n;
  if (load_modules(mods, 32, &n) || !n) {
    printf("# runtime/lua not found from %s: skipped\n", getcwd((char[256]){0}, 256));
    skip();
  }
  sbx_zygote_cfg cfg = {.modules = mods,
                        .nmodules = n,
                        .preload = AO_PRELOAD,
                        .preload_len = strlen(AO_PRELOAD),
                        .ns = SBX_NS_ALL,
                        .mem_cap = (size_t)256 << 20};
  sbx_zygote *z;
  vn_err e;
  double t0 = now_ms();
  if (sbx_zygote_start(&cfg, &z, &e)) fail_msg("%s", e.msg);
  printf("# zygote with the AO library (%zu modules) ready in %.1f ms\n", n, now_ms() - t0);
  for (size_t i = 0; i < n; i++) free((char *)mods[i].name), free((char *)mods[i].src);
  usleep(50000); /* let the zygote fill its pool */
  t0 = now_ms();
  sbx_worker *w = spawn(z);
  double spawned = now_ms() - t0;
  const char *env =
      "{\"Process\":{\"Id\":\"PID\",\"Owner\":\"OWNER\",\"Tags\":[{\"name\":\"Name\",\"value\":"
      "\"t\"}]},\"Module\":{\"Id\":\"MOD\",\"Owner\":\"OWNER\",\"Tags\":[]}}";
  char msg[1024];
  int len = snprintf(msg, sizeof msg,
                     "{\"Id\":\"PID\",\"Owner\":\"OWNER\",\"Target\":\"PID\",\"Data\":\"\","
                     "\"Tags\":[{\"name\":\"Type\",\"value\":\"Process\"}],\"Timestamp\":1}%c%s",
                     0, env);
  sbx_call c = {.entry = "vmnode_handle", .payload = msg, .payload_len = (size_t)len};
  sbx_result r;
  double t1 = now_ms();
  if (sbx_worker_apply(w, &c, &r, &e)) fail_msg("%s", e.msg);
  double first = now_ms() - t0, first_apply = now_ms() - t1;
  assert_int_equal(r.status, SBX_OK);
  sbx_result_free(&r);
  int f0 = open_file("ao0");
  sbx_image_info i0;
  assert_int_equal(sbx_worker_checkpoint(w, f0, 0, &i0, &e), 0);
  close(f0);
  printf("# AO: image of a fresh process (after its spawn message): %.0f KiB\n",
         i0.image_len / 1024.0);
  len = snprintf(msg, sizeof msg,
                 "{\"Id\":\"M1\",\"Owner\":\"OWNER\",\"Target\":\"PID\",\"Data\":\"1 + 1\","
                 "\"Tags\":[{\"name\":\"Action\",\"value\":\"Eval\"}],\"Timestamp\":2}%c%s",
                 0, env);
  c.payload_len = (size_t)len;
  if (sbx_worker_apply(w, &c, &r, &e)) fail_msg("%s", e.msg);
  if (r.status != SBX_OK || !strstr(r.value, "\"data\":\"2\""))
    fail_msg("Eval 1 + 1: %s", r.status ? r.error : r.value);
  printf(
      "# AO: spawn to first result %.2f ms (spawn %.2f, first apply %.2f: the spawn "
      "message); Eval 1 + 1 -> %.60s\n",
      first, spawned, first_apply, r.value);
  sbx_result_free(&r);
  /* Message rate through the whole apply path (no HTTP, no store). */
  len = snprintf(msg, sizeof msg,
                 "{\"Id\":\"M2\",\"Owner\":\"U\",\"Target\":\"PID\",\"Data\":\"hi\","
                 "\"Tags\":[{\"name\":\"Action\",\"value\":\"Ping\"}],\"Timestamp\":3}%c%s",
                 0, env);
  c.payload_len = (size_t)len;
  int count = 2000;
  t0 = now_ms();
  for (int i = 0; i < count; i++) {
    if (sbx_worker_apply(w, &c, &r, &e)) fail_msg("%s", e.msg);
    sbx_result_free(&r);
  }
  double dt = now_ms() - t0;
  printf("# AO: %d unhandled messages (to the Inbox, trimmed at 10000) in %.0f ms: %.0f msg/s\n",
         count, dt, count / dt * 1000);
  int fd = open_file("ao");
  sbx_image_info info;
  assert_int_equal(sbx_worker_checkpoint(w, fd, 0, &info, &e), 0);
  printf("# AO: image after %d messages: %.0f KiB\n", count + 2, info.image_len / 1024.0);
  print_memory("AO worker after the messages", sbx_worker_pid(w));
  sbx_worker *fresh = spawn(z);
  usleep(20000);
  print_memory("idle AO worker (fresh from the zygote)", sbx_worker_pid(fresh));
  print_memory("AO zygote", sbx_zygote_pid(z));
  close(fd);
  sbx_worker_close(fresh);
  sbx_worker_close(w);
  sbx_zygote_stop(z);
}

/* ---- measurements (printed, not asserted) ---- */

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void test_measure(void **state) {
  enum { N = 100 };
  double sp[N], cl[N];
  /* Spaced spawns (the pool refilled in between) and a burst of N. */
  for (int i = 0; i < N; i++) {
    usleep(10000);
    double t0 = now_ms();
    sbx_worker *w = spawn(zyg);
    double t1 = now_ms();
    sbx_worker_close(w);
    sp[i] = t1 - t0;
    cl[i] = now_ms() - t1;
  }
  qsort(sp, N, sizeof *sp, cmp_d);
  qsort(cl, N, sizeof *cl, cmp_d);
  printf(
      "# spawn from the zygote's pool (spaced): p50 %.3f ms, p99 %.3f ms; "
      "close p50 %.2f ms\n",
      sp[N / 2], sp[N - 2], cl[N / 2]);
  static sbx_worker *many[N];
  usleep(20000);
  double b0 = now_ms();
  for (int i = 0; i < N; i++) {
    double t0 = now_ms();
    many[i] = spawn(zyg);
    sp[i] = now_ms() - t0;
  }
  double burst = now_ms() - b0;
  qsort(sp, N, sizeof *sp, cmp_d);
  printf(
      "# spawn burst of %d (clone + confine on the critical path after the pool): "
      "p50 %.2f ms, p99 %.2f ms, %.0f spawns/s\n",
      N, sp[N / 2], sp[N - 2], N / burst * 1000);
  for (int i = 0; i < N; i++) sbx_worker_close(many[i]);
  sbx_zygote_cfg nons = {.preload = PRELOAD, .preload_len = strlen(PRELOAD), .ns = 0};
  sbx_zygote *z0 = start(&nons);
  for (int i = 0; i < N; i++) {
    double t0 = now_ms();
    many[i] = spawn(z0);
    sp[i] = now_ms() - t0;
  }
  qsort(sp, N, sizeof *sp, cmp_d);
  printf("# same burst without namespaces: p50 %.2f ms, p99 %.2f ms\n", sp[N / 2], sp[N - 2]);
  for (int i = 0; i < N; i++) sbx_worker_close(many[i]);
  sbx_zygote_stop(z0);

  sbx_worker *w = spawn(zyg);
  usleep(50000); /* measure without the pool refilling beside us */
  print_memory("idle worker", sbx_worker_pid(w));
  int count = 5000;
  double t0 = now_ms();
  for (int i = 0; i < count; i++) {
    sbx_result r = call(w, NULL, "return 1", 0);
    sbx_result_free(&r);
  }
  double chunk = (now_ms() - t0) / count;
  t0 = now_ms();
  for (int i = 0; i < count; i++) {
    sbx_result r = call(w, "handle", "x", 0);
    sbx_result_free(&r);
  }
  double entry = (now_ms() - t0) / count;
  printf("# apply round trip: chunk 'return 1' %.1f us, entry call %.1f us\n", chunk * 1000,
         entry * 1000);
  sbx_worker_close(w);

  static const int mib[] = {1, 16};
  for (int i = 0; i < 2; i++) {
    sbx_worker *a = spawn(zyg);
    char src[160];
    snprintf(src, sizeof src, "big = {} for i = 1, %d do big[i] = ('x'):rep(100) .. i end",
             mib[i] * 4000);
    expect(a, NULL, src, NULL);
    int fd = open_file(i ? "m16" : "m1");
    vn_err e;
    sbx_image_info info;
    t0 = now_ms();
    assert_int_equal(sbx_worker_checkpoint(a, fd, 0, &info, &e), 0);
    double ck = now_ms() - t0;
    sbx_worker *b = spawn(zyg), *c = spawn(zyg);
    usleep(50000);
    t0 = now_ms();
    assert_int_equal(sbx_worker_restore(b, fd, 0, NULL, &e), 0);
    double rs = now_ms() - t0;
    t0 = now_ms();
    assert_int_equal(sbx_worker_restore(c, fd, SBX_RESTORE_VERIFY, NULL, &e), 0);
    double rv = now_ms() - t0;
    t0 = now_ms();
    expect(b, NULL, "return #big", NULL);
    double first = now_ms() - t0;
    printf(
        "# %.1f MiB image: checkpoint %.2f ms, restore %.3f ms (lazy) / %.2f ms (verified), "
        "first call after restore %.3f ms\n",
        info.image_len / 1048576.0, ck, rs, rv, first);
    close(fd);
    sbx_worker_close(a);
    sbx_worker_close(b);
    sbx_worker_close(c);
  }
}

int main(int argc, char **argv) {
  sbx_zygote_main(argc, argv, &hooks); /* returns only when this is not a zygote */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic),
      cmocka_unit_test(test_isolation),
      cmocka_unit_test(test_script_errors),
      cmocka_unit_test(test_killed_mid_call),
      cmocka_unit_test(test_crash),
      cmocka_unit_test(test_seccomp),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_checkpoint_restore),
      cmocka_unit_test(test_pairs_two_zygotes),
      cmocka_unit_test(test_zygote_errors),
      cmocka_unit_test(test_unprivileged),
      cmocka_unit_test(test_node_death),
      cmocka_unit_test(test_ao_library),
      cmocka_unit_test(test_measure),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
