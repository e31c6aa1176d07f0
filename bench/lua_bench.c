/* lua_bench.c - the Lua VM backend on the apply path alone (no HTTP, no
 * SQLite): what a process costs to start, to feed and to keep.
 *
 * Drives the backend through the generic VM interface (vm/vm.h) exactly as
 * the node's executors do: signed ANS-104 items, Meta from node_meta(), the
 * Env of exec_spawn_vm. Measured in one run:
 *   spawn   spawn a VM for a fresh process + apply its spawn item (nonce 0)
 *           + apply one Eval "1 + 1"; latency of the three together
 *   msgs1   one process: messages to a handler (added by Eval) that counts
 *           and replies with msg.reply; messages/s and per-message latency
 *   msgs100 100 processes, THREADS threads, each thread applying to its
 *           processes round-robin; messages/s over all
 *   memory  Rss / Pss / private bytes of the 100 idle workers (after spawn
 *           and the handler Eval), from /proc/<pid>/smaps_rollup, per process
 *   image   checkpoint length of a fresh process (after nonce 0) and after
 *           the handler Eval
 * Items are built and signed before the clock starts (signing is the
 * client's cost); building Meta and freeing results are timed (the node
 * does both per message).
 *
 * Output: one "key value" line per figure (lua.spawn_p50_ms 1.23 ...), for
 * bench/run.sh, which repeats rounds and prints them beside their anchors.
 * --samples FILE appends every spawn latency (ms, one a line) to FILE.
 *
 * usage: lua_bench [--backend lua|echo] [--spawns N] [--msgs N]
 *                  [--procs N] [--multi-msgs N] [--threads N] [--samples FILE]
 *                  [--spawn-gap-ms MS] [--ns MASK]
 * --ns: the SBX_NS_* namespaces workers get (default 0x1f, all, as the node
 * runs them; 0 = none, to see what the namespaces cost). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "item/item.h"
#include "node/node.h"
#include "sandbox/worker.h"
#include "vm/vm.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, const vn_err *err) {
  fprintf(stderr, "lua_bench: %s: %s%s%s\n", what, err && err->code ? err->code : "",
          err && err->code ? ": " : "", err ? err->msg : "");
  exit(1);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of n sorted values. */
static double pct(const double *v, size_t n, double p) {
  if (!n) return 0;
  size_t i = (size_t)(p / 100.0 * n + 0.999999);
  if (i < 1) i = 1;
  if (i > n) i = n;
  return v[i - 1];
}

/* ------------------------------------------------------------ backend */

/* The backend under test: the Lua VM when vm.h declares it, else the echo
 * VM (so the harness itself can be checked without a runtime). */
typedef struct backend {
  const char *name;
  const char *format;
  const vm_ops *ops;
  int is_lua;
} backend;

static unsigned g_ns = SBX_NS_ALL; /* --ns: what the workers get */

static int backend_open(const char *want, backend *b, vn_err *err) {
  memset(b, 0, sizeof *b);
  if (!strcmp(want, "echo")) {
    *b = (backend){"echo", VM_ECHO_FORMAT, &vm_echo_ops, 0};
    return 0;
  }
#ifdef VM_LUA_FORMAT
  if (!strcmp(want, "lua")) {
    /* As the node runs it: every namespace, seccomp, the default pool. */
    vm_lua_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ns = g_ns;
    if (vm_lua_init(&cfg, err)) return -1;
    *b = (backend){"lua", VM_LUA_FORMAT, &vm_lua_ops, 1};
    return 0;
  }
#endif
  return vn_errf(err, "backend", "backend %s is not built in (lua needs VM_LUA_FORMAT in vm/vm.h)",
                 want);
}

static void backend_close(backend *b) {
#ifdef VM_LUA_FORMAT
  if (b->is_lua) vm_lua_shutdown();
#endif
  (void)b;
}

/* The worker process behind an instance, or 0 when the backend has none. */
static pid_t backend_pid(const backend *b, vm *v) {
#ifdef VM_LUA_FORMAT
  if (b->is_lua) return vm_lua_worker_pid(v);
#endif
  (void)b;
  (void)v;
  return 0;
}

/* -------------------------------------------------------------- items */

static item_key *g_key;
static const char *g_owner;
static item *g_module;
static uint64_t g_anchor_ctr;

/* A distinct anchor per item so every id differs (as real clients do). */
static void next_anchor(item *it) {
  uint8_t a[32];
  memset(a, 0, sizeof a);
  uint64_t c = ++g_anchor_ctr;
  memcpy(a, &c, sizeof c);
  a[31] = 0xb7;
  item_set_anchor(it, a);
}

static void sign_or_die(item *it, const char *what) {
  vn_err err;
  vn_err_clear(&err);
  if (item_sign(it, g_key, &err)) die(what, &err);
}

static item *make_module(const char *format) {
  vn_err err;
  vn_err_clear(&err);
  item *it = item_new();
  if (item_add_tag(it, "Data-Protocol", "hymx", &err) ||
      item_add_tag(it, "Variant", "v0.1.0", &err) || item_add_tag(it, "Type", "Module", &err) ||
      item_add_tag(it, "Module-Format", format, &err))
    die("module tags", &err);
  sign_or_die(it, "module sign");
  return it;
}

static item *make_process(void) {
  vn_err err;
  vn_err_clear(&err);
  item *it = item_new();
  next_anchor(it);
  if (item_add_tag(it, "Data-Protocol", "hymx", &err) ||
      item_add_tag(it, "Variant", "v0.1.0", &err) || item_add_tag(it, "Type", "Process", &err) ||
      item_add_tag(it, "Module", g_module->id, &err) ||
      item_add_tag(it, "Scheduler", g_owner, &err) || item_add_tag(it, "Name", "bench", &err))
    die("process tags", &err);
  sign_or_die(it, "process sign");
  return it;
}

static item *make_message(const char *pid, const char *action, const char *data) {
  vn_err err;
  vn_err_clear(&err);
  item *it = item_new();
  next_anchor(it);
  if (item_set_target_b64(it, pid, &err) || item_add_tag(it, "Data-Protocol", "hymx", &err) ||
      item_add_tag(it, "Variant", "v0.1.0", &err) || item_add_tag(it, "Type", "Message", &err) ||
      item_add_tag(it, "Action", action, &err))
    die("message tags", &err);
  if (data) item_set_data(it, (const uint8_t *)data, strlen(data));
  sign_or_die(it, "message sign");
  return it;
}

/* As the node's item_brief: {"Id","Owner","Tags":[{name,value}]}. */
static json_t *brief(const item *it) {
  char addr[ITEM_ADDR_MAX];
  item_owner_address(it, addr);
  json_t *tags = json_array();
  for (size_t i = 0; i < it->ntags; i++)
    json_array_append_new(tags, json_pack("{s:s%,s:s%}", "name", it->tags[i].name,
                                          it->tags[i].name_len, "value", it->tags[i].value,
                                          it->tags[i].value_len));
  return json_pack("{s:s,s:s,s:o}", "Id", it->id, "Owner", addr, "Tags", tags);
}

/* ---------------------------------------------------------- processes */

typedef struct proc {
  item *spawn; /* the process item = its message at nonce 0 */
  vm *v;
  int64_t nonce; /* last applied */
  int64_t ts;    /* timestamp of the last applied message (ms) */
} proc;

static const backend *g_b;

/* Timestamps advance by 1 ms per message from a fixed start, as a
 * scheduler would assign them. */
#define TS0 ((int64_t)1750000000000)

static void proc_spawn(proc *p) {
  vn_err err;
  vn_err_clear(&err);
  json_t *meta = node_meta(NULL, p->spawn->id, p->spawn, g_owner, 0, TS0);
  json_t *env = json_pack("{s:o,s:o,s:o,s:i,s:i,s:{}}", "Meta", meta, "Process", brief(p->spawn),
                          "Module", brief(g_module), "Nonce", 0, "Sequence", -1,
                          "Received-Sequence");
  vm_spawn_args a = {.pid = p->spawn->id, .process = p->spawn, .module = g_module,
                     .owner = g_owner, .env = env};
  if (g_b->ops->spawn(&a, &p->v, &err)) die("spawn", &err);
  json_decref(env);
  p->nonce = -1;
  p->ts = TS0;
}

/* Apply the next message (it == NULL: the spawn item at nonce 0). Returns
 * the result when keep is set (caller frees), else NULL. */
static json_t *proc_apply(proc *p, const item *it, int keep) {
  vn_err err;
  vn_err_clear(&err);
  if (!it) it = p->spawn;
  int64_t nonce = p->nonce + 1;
  int64_t ts = TS0 + nonce;
  json_t *meta = node_meta(NULL, p->spawn->id, it, g_owner, nonce, ts);
  vm_msg m = {.msg = it, .from = g_owner, .meta = meta, .mode = VM_APPLY};
  json_t *res = NULL;
  if (g_b->ops->apply(p->v, &m, &res, &err)) die("apply", &err);
  json_decref(meta);
  p->nonce = nonce;
  p->ts = ts;
  if (keep) return res;
  json_decref(res);
  return NULL;
}

static void proc_close(proc *p) {
  if (p->v) p->v->ops->close(p->v);
  p->v = NULL;
}

/* Output.data of a result as text ("" when absent). */
static const char *out_data(json_t *res) {
  json_t *o = json_object_get(res, "Output");
  const char *s = json_string_value(json_object_get(o, "data"));
  if (!s) s = json_string_value(o);
  return s ? s : "";
}

/* Fail loudly when the process reported an error: a benchmark of errors
 * measures nothing. */
static void check_ok(json_t *res, const char *what) {
  const char *e = json_string_value(json_object_get(res, "Error"));
  if (e && *e) {
    fprintf(stderr, "lua_bench: %s: process error: %s\n", what, e);
    exit(1);
  }
}

/* The handler every throughput test talks to: counts and replies. */
static const char HANDLER[] =
    "Count = 0\n"
    "Handlers.add('ping', Handlers.utils.hasMatchingTag('Action', 'Ping'), function (msg)\n"
    "  Count = Count + 1\n"
    "  msg.reply({ Data = tostring(Count) })\n"
    "end)\n";

/* A spawned process ready for Pings: nonce 0 applied, handler added. */
static void proc_ready(proc *p) {
  p->spawn = make_process();
  proc_spawn(p);
  json_t *r = proc_apply(p, NULL, 1);
  check_ok(r, "spawn message");
  json_decref(r);
  item *ev = make_message(p->spawn->id, "Eval", HANDLER);
  r = proc_apply(p, ev, 1);
  check_ok(r, "handler eval");
  json_decref(r);
  item_free(ev);
}

/* -------------------------------------------------------- measurements */

static long minflt(pid_t pid);

/* gap_ms > 0: sleep between spawns (outside the clock), so the pool's
 * refill and the previous worker's exit are not on the same 2 cores. */
static void bench_spawn(int n, const char *samples_path, int gap_ms) {
  double *lat = calloc(n, sizeof *lat);
  /* The three steps apart: the instance, nonce 0 (boot), the Eval. */
  double *step[3] = {calloc(n, sizeof(double)), calloc(n, sizeof(double)),
                     calloc(n, sizeof(double))};
  double *faults = calloc(n, sizeof *faults);
  proc p;
  for (int i = 0; i < n; i++) {
    memset(&p, 0, sizeof p);
    p.spawn = make_process();
    item *ev = make_message(p.spawn->id, "Eval", "1 + 1");
    double t0 = now_ms();
    proc_spawn(&p);
    double ta = now_ms();
    proc_apply(&p, NULL, 0);
    double tb = now_ms();
    json_t *r = proc_apply(&p, ev, 1);
    double t1 = now_ms();
    lat[i] = t1 - t0;
    step[0][i] = ta - t0;
    step[1][i] = tb - ta;
    step[2][i] = t1 - tb;
    check_ok(r, "eval 1 + 1");
    if (g_b->is_lua && strcmp(out_data(r), "2") != 0) {
      fprintf(stderr, "lua_bench: eval 1 + 1 gave Output %s\n", out_data(r));
      exit(1);
    }
    json_decref(r);
    /* The worker's page faults from its fork to its first result (in this
     * VM a fault costs tens of microseconds). */
    faults[i] = (double)minflt(backend_pid(g_b, p.v));
    proc_close(&p);
    item_free(ev);
    item_free(p.spawn);
    if (gap_ms > 0) usleep((useconds_t)gap_ms * 1000);
  }
  if (samples_path) {
    FILE *f = fopen(samples_path, "a");
    if (f) {
      for (int i = 0; i < n; i++) fprintf(f, "%.4f\n", lat[i]);
      fclose(f);
    }
  }
  qsort(lat, n, sizeof *lat, cmp_double);
  printf("lua.spawn_n %d\n", n);
  printf("lua.spawn_p50_ms %.3f\n", pct(lat, n, 50));
  printf("lua.spawn_p99_ms %.3f\n", pct(lat, n, 99));
  static const char *const names[3] = {"vm", "nonce0", "eval"};
  for (int k = 0; k < 3; k++) {
    qsort(step[k], n, sizeof(double), cmp_double);
    printf("lua.spawn_%s_p50_ms %.3f\n", names[k], pct(step[k], n, 50));
    free(step[k]);
  }
  qsort(faults, n, sizeof *faults, cmp_double);
  if (faults[0] >= 0) printf("lua.spawn_worker_faults_p50 %.0f\n", pct(faults, n, 50));
  free(faults);
  free(lat);
}

static void bench_one(int n) {
  proc p;
  memset(&p, 0, sizeof p);
  proc_ready(&p);
  item **msgs = calloc(n, sizeof *msgs);
  for (int i = 0; i < n; i++) msgs[i] = make_message(p.spawn->id, "Ping", NULL);
  double *lat = calloc(n, sizeof *lat);
  json_t *last = NULL;
  double t0 = now_ms();
  for (int i = 0; i < n; i++) {
    double a = now_ms();
    json_t *r = proc_apply(&p, msgs[i], i == n - 1);
    lat[i] = (now_ms() - a) * 1e3;
    if (r) last = r;
  }
  double dt = now_ms() - t0;
  /* The last reply must carry the count: every message reached the handler. */
  check_ok(last, "ping");
  if (g_b->is_lua) {
    json_t *m0 = json_array_get(json_object_get(last, "Messages"), 0);
    const char *d = json_string_value(json_object_get(m0, "Data"));
    char want[32];
    snprintf(want, sizeof want, "%d", n);
    if (!d || strcmp(d, want) != 0) {
      fprintf(stderr, "lua_bench: last reply Data %s, want %s\n", d ? d : "(none)", want);
      exit(1);
    }
  }
  json_decref(last);
  qsort(lat, n, sizeof *lat, cmp_double);
  printf("lua.msgs1_n %d\n", n);
  printf("lua.msgs1_per_s %.0f\n", n / (dt / 1e3));
  printf("lua.msg1_p50_us %.1f\n", pct(lat, n, 50));
  printf("lua.msg1_p99_us %.1f\n", pct(lat, n, 99));
  for (int i = 0; i < n; i++) item_free(msgs[i]);
  free(msgs);
  free(lat);
  proc_close(&p);
  item_free(p.spawn);
}

/* Minor page faults of a process so far (/proc/<pid>/stat field 10), -1 if
 * unreadable. */
static long minflt(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may hold spaces */
  long v = -1;
  if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %ld", &v) != 1) v = -1;
  return v;
}

/* smaps_rollup of one pid: Rss, Pss and private (clean + dirty), in kB. */
static int smaps(pid_t pid, long *rss, long *pss, long *priv) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  *rss = *pss = *priv = 0;
  long v;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "Rss: %ld kB", &v) == 1) *rss = v;
    else if (sscanf(line, "Pss: %ld kB", &v) == 1) *pss = v;
    else if (sscanf(line, "Private_Clean: %ld kB", &v) == 1) *priv += v;
    else if (sscanf(line, "Private_Dirty: %ld kB", &v) == 1) *priv += v;
  }
  fclose(f);
  return 0;
}

typedef struct lane {
  proc *procs;
  int nprocs, first, stride; /* this thread's processes: first, first+stride, ... */
  item ***msgs;              /* msgs[process][k] */
  int per_proc;
} lane;

static void *lane_run(void *arg) {
  lane *l = arg;
  for (int k = 0; k < l->per_proc; k++)
    for (int i = l->first; i < l->nprocs; i += l->stride)
      proc_apply(&l->procs[i], l->msgs[i][k], 0);
  return NULL;
}

static void bench_many(int nprocs, int total, int threads) {
  proc *ps = calloc(nprocs, sizeof *ps);
  for (int i = 0; i < nprocs; i++) proc_ready(&ps[i]);

  /* Memory of idle processes: ready, nothing running. */
  long rss = 0, pss = 0, priv = 0;
  int counted = 0;
  for (int i = 0; i < nprocs; i++) {
    pid_t pid = backend_pid(g_b, ps[i].v);
    long r, s, q;
    if (pid > 0 && smaps(pid, &r, &s, &q) == 0) {
      rss += r;
      pss += s;
      priv += q;
      counted++;
    }
  }
  if (counted) {
    printf("lua.mem_workers %d\n", counted);
    printf("lua.rss_per_proc_kib %.0f\n", (double)rss / counted);
    printf("lua.pss_per_proc_kib %.0f\n", (double)pss / counted);
    printf("lua.private_per_proc_kib %.0f\n", (double)priv / counted);
  }

  int per = total / nprocs;
  if (per < 1) per = 1;
  item ***msgs = calloc(nprocs, sizeof *msgs);
  for (int i = 0; i < nprocs; i++) {
    msgs[i] = calloc(per, sizeof **msgs);
    for (int k = 0; k < per; k++) msgs[i][k] = make_message(ps[i].spawn->id, "Ping", NULL);
  }
  if (threads < 1) threads = 1;
  lane *lanes = calloc(threads, sizeof *lanes);
  pthread_t *th = calloc(threads, sizeof *th);
  double t0 = now_ms();
  for (int t = 0; t < threads; t++) {
    lanes[t] = (lane){ps, nprocs, t, threads, msgs, per};
    if (pthread_create(&th[t], NULL, lane_run, &lanes[t])) {
      fprintf(stderr, "lua_bench: pthread_create: %s\n", strerror(errno));
      exit(1);
    }
  }
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  double dt = now_ms() - t0;
  printf("lua.msgs100_procs %d\n", nprocs);
  printf("lua.msgs100_threads %d\n", threads);
  printf("lua.msgs100_n %d\n", per * nprocs);
  printf("lua.msgs100_per_s %.0f\n", per * nprocs / (dt / 1e3));

  for (int i = 0; i < nprocs; i++) {
    for (int k = 0; k < per; k++) item_free(msgs[i][k]);
    free(msgs[i]);
    proc_close(&ps[i]);
    item_free(ps[i].spawn);
  }
  free(msgs);
  free(lanes);
  free(th);
  free(ps);
}

static size_t checkpoint_len(proc *p) {
  vn_err err;
  vn_err_clear(&err);
  char *st = NULL;
  size_t len = 0;
  if (g_b->ops->checkpoint(p->v, &st, &len, &err)) die("checkpoint", &err);
  free(st);
  return len;
}

static void bench_image(void) {
  proc p;
  memset(&p, 0, sizeof p);
  p.spawn = make_process();
  proc_spawn(&p);
  json_t *r = proc_apply(&p, NULL, 1);
  check_ok(r, "spawn message");
  json_decref(r);
  printf("lua.image_fresh_bytes %zu\n", checkpoint_len(&p));
  item *ev = make_message(p.spawn->id, "Eval", HANDLER);
  r = proc_apply(&p, ev, 1);
  check_ok(r, "handler eval");
  json_decref(r);
  printf("lua.image_handler_bytes %zu\n", checkpoint_len(&p));
  item_free(ev);
  proc_close(&p);
  item_free(p.spawn);
}

/* ---------------------------------------------------------------- main */

static const char USAGE[] =
    "usage: lua_bench [--backend lua|echo] [--spawns N] [--msgs N] [--procs N]\n"
    "                 [--multi-msgs N] [--threads N] [--samples FILE] [--spawn-gap-ms MS]\n"
    "                 [--ns MASK]\n";

int main(int argc, char **argv) {
  static const sbx_hooks hooks = {.open_libs = vm_lua_open_host};
  sbx_zygote_main(argc, argv, &hooks); /* returns at once unless we are the zygote */
#ifdef VM_LUA_FORMAT
  const char *want = "lua";
#else
  const char *want = "echo";
#endif
  int spawns = 200, msgs = 5000, procs = 100, multi = 10000, threads = 2, gap = 0;
  const char *samples = NULL;
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fputs(USAGE, stderr);
      return 2;
    }
    if (!strcmp(a, "--backend")) want = v;
    else if (!strcmp(a, "--spawns")) spawns = atoi(v);
    else if (!strcmp(a, "--msgs")) msgs = atoi(v);
    else if (!strcmp(a, "--procs")) procs = atoi(v);
    else if (!strcmp(a, "--multi-msgs")) multi = atoi(v);
    else if (!strcmp(a, "--threads")) threads = atoi(v);
    else if (!strcmp(a, "--samples")) samples = v;
    else if (!strcmp(a, "--spawn-gap-ms")) gap = atoi(v);
    else if (!strcmp(a, "--ns")) g_ns = (unsigned)strtoul(v, NULL, 0);
    else {
      fputs(USAGE, stderr);
      return 2;
    }
  }
  if (spawns < 1 || msgs < 1 || procs < 1 || multi < 1) {
    fputs(USAGE, stderr);
    return 2;
  }

  vn_err err;
  vn_err_clear(&err);
  backend b;
  if (backend_open(want, &b, &err)) die("backend", &err);
  g_b = &b;
  if (!(g_key = item_key_generate(&err))) die("keygen", &err);
  g_owner = item_key_address(g_key);
#ifdef VM_LUA_FORMAT
  /* The module the node itself serves for Lua processes (its limits). */
  if (b.is_lua && !(g_module = vm_lua_module_item(g_key, &err))) die("module", &err);
#endif
  if (!g_module) g_module = make_module(b.format);
  printf("lua.backend %s\n", b.name);
#ifdef VM_LUA_FORMAT
  if (b.is_lua) printf("lua.sandbox_note %s\n", vm_lua_note() && *vm_lua_note() ? vm_lua_note() : "full");
#endif

  bench_image();
  bench_spawn(spawns, samples, gap);
  bench_one(msgs);
  bench_many(procs, multi, threads);

  item_free(g_module);
  item_key_free(g_key);
  backend_close(&b);
  return 0;
}
