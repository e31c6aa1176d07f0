/* test_store.c - the store on a real SQLite file in a temp dir: schema and
 * migrations, every table's calls, transactions, two connections, concurrent
 * opens, and a SIGKILL in the middle of durable commits. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

typedef struct fixture {
  char dir[64];
  char path[128];
} fixture;

static void rm_db(const char *path) {
  char p[160];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/vn_store_XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/node.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  rm_db(f->path);
  rmdir(f->dir);
  free(f);
  return 0;
}

static store *open_ok(const char *path, int durable) {
  vn_err e = {0};
  store *s = store_open(path, durable, &e);
  if (!s) fail_msg("store_open %s: %s: %s", path, e.code, e.msg);
  return s;
}

static void put_asg(store *s, const char *pid, int64_t nonce, const char *mid) {
  char aid[64];
  uint8_t raw[40];
  snprintf(aid, sizeof aid, "asg-%s-%lld", pid, (long long)nonce);
  memset(raw, (int)(nonce & 0xff), sizeof raw);
  store_assignment a = {.pid = (char *)pid,
                        .nonce = nonce,
                        .message_id = (char *)mid,
                        .assignment_id = aid,
                        .timestamp_ms = 1000 + nonce,
                        .raw = raw,
                        .raw_len = sizeof raw};
  vn_err e = {0};
  if (store_assignment_put(s, &a, &e)) fail_msg("assignment_put: %s: %s", e.code, e.msg);
}

/* ---- schema ---- */

static void test_open_reopen(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 1);
  assert_int_equal(store_meta_put(s, "default_module", "mod1", &e), 0);
  store_item_meta m = {
      .id = "item1", .type = "Message", .owner = "own", .target = "tgt", .received_ms = 5};
  assert_int_equal(store_item_put(s, &m, (const uint8_t *)"abc", 3, &e), 1);
  store_close(s);

  s = open_ok(f->path, 0);
  char *v = NULL;
  assert_int_equal(store_meta_get(s, "default_module", &v, &e), 1);
  assert_string_equal(v, "mod1");
  free(v);
  uint8_t *raw;
  size_t len;
  assert_int_equal(store_item_get(s, "item1", &raw, &len, &e), 1);
  assert_int_equal(len, 3);
  assert_memory_equal(raw, "abc", 3);
  free(raw);
  store_close(s);
}

static void test_migration_sets_version(void **state) {
  fixture *f = *state;
  store_close(open_ok(f->path, 0));
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  /* Every table of the schema exists. */
  const char *tables[] = {"items", "processes", "assignments", "results", "cache",
                          "seqs",  "modules",   "checkpoints", "nodes",   "meta"};
  for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", -1, &st,
                           NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) fail_msg("missing table %s", tables[i]);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  /* Opening again at the current version is a no-op. */
  store_close(open_ok(f->path, 1));
}

static void test_too_new_refused(void **state) {
  fixture *f = *state;
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  vn_err e = {0};
  store *s = store_open(f->path, 1, &e);
  assert_null(s);
  assert_non_null(e.code);
  assert_string_equal(e.code, "store_too_new");
  char want[128];
  snprintf(want, sizeof want, "schema 99, this build knows %d", STORE_SCHEMA_VERSION);
  if (!strstr(e.msg, want) || !strstr(e.msg, "newer vmnode")) fail_msg("message: %s", e.msg);
}

/* A failing step leaves the file as it was: the migration is one transaction. */
static void test_migration_failure_rolls_back(void **state) {
  fixture *f = *state;
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE meta(x)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  vn_err e = {0};
  assert_null(store_open(f->path, 0, &e));
  assert_string_equal(e.code, "store_io");
  if (!strstr(e.msg, "migrating schema 0 to 1")) fail_msg("message: %s", e.msg);
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 1); /* only the table made above */
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* ---- items ---- */

static void test_items(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  store_item_meta m = {.id = "X1", .type = NULL, .owner = "o", .target = NULL, .received_ms = 9};
  assert_int_equal(store_item_put(s, &m, (const uint8_t *)"\0\1\2", 3, &e), 1);
  assert_int_equal(store_item_put(s, &m, (const uint8_t *)"zzz", 3, &e), 0);
  uint8_t *raw = NULL;
  size_t len = 0;
  assert_int_equal(store_item_get(s, "X1", &raw, &len, &e), 1);
  assert_int_equal(len, 3);
  assert_memory_equal(raw, "\0\1\2", 3); /* the first write stays */
  free(raw);
  assert_int_equal(store_item_get(s, "nope", &raw, &len, &e), 0);
  assert_null(raw);
  /* An empty item round-trips as a non-NULL zero-length buffer. */
  store_item_meta m2 = {.id = "empty"};
  assert_int_equal(store_item_put(s, &m2, NULL, 0, &e), 1);
  assert_int_equal(store_item_get(s, "empty", &raw, &len, &e), 1);
  assert_non_null(raw);
  assert_int_equal(len, 0);
  free(raw);
  store_close(s);
}

/* ---- processes ---- */

typedef struct names {
  int n;
  char v[8][32];
  int stop_after;
} names;

static int collect_proc(void *ctx, const store_process *p) {
  names *c = ctx;
  snprintf(c->v[c->n++], sizeof c->v[0], "%s", p->pid);
  return c->stop_after && c->n >= c->stop_after;
}

static void test_processes(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  assert_int_equal(store_process_count(s), 0);
  store_process p = {.pid = "P2",
                     .module = "M",
                     .owner = "O",
                     .name = "two",
                     .status = "running",
                     .spawn_ms = 200};
  assert_int_equal(store_process_put(s, &p, &e), 0);
  p.pid = "P1";
  p.name = NULL;
  p.spawn_ms = 100;
  assert_int_equal(store_process_put(s, &p, &e), 0);
  p.pid = "P3";
  p.spawn_ms = 300;
  assert_int_equal(store_process_put(s, &p, &e), 0);
  assert_int_equal(store_process_put(s, &p, &e), -1);
  assert_string_equal(e.code, "process_exists");
  assert_int_equal(store_process_count(s), 3);

  uint8_t hc[32];
  for (int i = 0; i < 32; i++) hc[i] = (uint8_t)i;
  assert_int_equal(store_process_advance(s, "P2", 7, hc, &e), 0);
  assert_int_equal(store_process_set_status(s, "P2", "failed", "out of gas", &e), 0);
  assert_int_equal(store_process_advance(s, "nope", 1, hc, &e), -1);
  assert_string_equal(e.code, "process_not_found");

  store_process g;
  assert_int_equal(store_process_get(s, "P2", &g, &e), 1);
  assert_string_equal(g.pid, "P2");
  assert_string_equal(g.module, "M");
  assert_string_equal(g.owner, "O");
  assert_string_equal(g.name, "two");
  assert_string_equal(g.status, "failed");
  assert_string_equal(g.error, "out of gas");
  assert_int_equal(g.nonce, 7);
  assert_memory_equal(g.hash_chain, hc, 32);
  assert_int_equal(g.spawn_ms, 200);
  store_process_clear(&g);
  assert_int_equal(store_process_get(s, "P1", &g, &e), 1);
  assert_null(g.name); /* NULL in, NULL out */
  assert_null(g.error);
  store_process_clear(&g);
  assert_int_equal(store_process_get(s, "nope", &g, &e), 0);

  names c = {0};
  assert_int_equal(store_process_each(s, collect_proc, &c, &e), 0);
  assert_int_equal(c.n, 3);
  assert_string_equal(c.v[0], "P1");
  assert_string_equal(c.v[1], "P2");
  assert_string_equal(c.v[2], "P3");
  names c2 = {.stop_after = 2};
  assert_int_equal(store_process_each(s, collect_proc, &c2, &e), 0);
  assert_int_equal(c2.n, 2);
  store_close(s);
}

/* ---- assignments ---- */

typedef struct nonces {
  int n;
  int64_t v[64];
  store *s;
} nonces;

static int collect_asg(void *ctx, const store_assignment *a) {
  nonces *c = ctx;
  c->v[c->n++] = a->nonce;
  assert_int_equal(a->raw_len, 40);
  assert_int_equal(a->raw[0], (uint8_t)(a->nonce & 0xff));
  assert_int_equal(a->timestamp_ms, 1000 + a->nonce);
  return 0;
}

static void test_assignments(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 1);
  /* Out of order on purpose: each must still return nonce order. */
  int64_t order[] = {3, 0, 4, 1, 2};
  for (int i = 0; i < 5; i++) {
    char mid[32];
    snprintf(mid, sizeof mid, "msg%lld", (long long)order[i]);
    put_asg(s, "P", order[i], mid);
  }
  put_asg(s, "Q", 0, "qmsg0");

  store_assignment a;
  assert_int_equal(store_assignment_by_nonce(s, "P", 2, &a, &e), 1);
  assert_string_equal(a.pid, "P");
  assert_int_equal(a.nonce, 2);
  assert_string_equal(a.message_id, "msg2");
  assert_string_equal(a.assignment_id, "asg-P-2");
  assert_int_equal(a.timestamp_ms, 1002);
  assert_int_equal(a.raw_len, 40);
  store_assignment_clear(&a);
  assert_int_equal(store_assignment_by_nonce(s, "P", 9, &a, &e), 0);
  assert_int_equal(store_assignment_by_message(s, "msg4", &a, &e), 1);
  assert_int_equal(a.nonce, 4);
  store_assignment_clear(&a);
  assert_int_equal(store_assignment_by_message(s, "nope", &a, &e), 0);
  assert_int_equal(store_message_assigned(s, "msg0", &e), 1);
  assert_int_equal(store_message_assigned(s, "nope", &e), 0);

  uint8_t raw[1] = {0};
  store_assignment d = {.pid = "P", .nonce = 5, .message_id = "msg1", .raw = raw, .raw_len = 1};
  assert_int_equal(store_assignment_put(s, &d, &e), -1);
  assert_string_equal(e.code, "duplicate_message");
  store_assignment t = {.pid = "P", .nonce = 1, .message_id = "fresh", .raw = raw, .raw_len = 1};
  assert_int_equal(store_assignment_put(s, &t, &e), -1);
  assert_string_equal(e.code, "nonce_taken");
  /* Both constraints at once: the message wins. */
  store_assignment b = {.pid = "P", .nonce = 1, .message_id = "msg3", .raw = raw, .raw_len = 1};
  assert_int_equal(store_assignment_put(s, &b, &e), -1);
  assert_string_equal(e.code, "duplicate_message");

  /* A refused put inside a transaction leaves the transaction usable. */
  assert_int_equal(store_begin(s, &e), 0);
  assert_int_equal(store_assignment_put(s, &t, &e), -1);
  put_asg(s, "P", 5, "msg5");
  assert_int_equal(store_commit(s, &e), 0);

  nonces c = {0};
  assert_int_equal(store_assignment_each(s, "P", 2, collect_asg, &c, &e), 0);
  assert_int_equal(c.n, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(c.v[i], 2 + i);
  nonces all = {0};
  assert_int_equal(store_assignment_each(s, "P", 0, collect_asg, &all, &e), 0);
  assert_int_equal(all.n, 6);
  nonces none = {0};
  assert_int_equal(store_assignment_each(s, "nope", 0, collect_asg, &none, &e), 0);
  assert_int_equal(none.n, 0);
  store_close(s);
}

/* A callback that calls back into the store with the same query. */
static int inner_count(void *ctx, const store_assignment *a) {
  (*(int *)ctx)++;
  return 0;
}

static int outer_reenter(void *ctx, const store_assignment *a) {
  nonces *c = ctx;
  int inner = 0;
  vn_err e = {0};
  assert_int_equal(store_assignment_each(c->s, a->pid, a->nonce, inner_count, &inner, &e), 0);
  c->v[c->n++] = inner;
  store_assignment g;
  assert_int_equal(store_assignment_by_nonce(c->s, a->pid, a->nonce, &g, &e), 1);
  assert_string_equal(g.message_id, a->message_id);
  store_assignment_clear(&g);
  return 0;
}

static void test_each_reentrant(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  for (int i = 0; i < 4; i++) {
    char mid[16];
    snprintf(mid, sizeof mid, "m%d", i);
    put_asg(s, "P", i, mid);
  }
  nonces c = {.s = s};
  assert_int_equal(store_assignment_each(s, "P", 0, outer_reenter, &c, &e), 0);
  assert_int_equal(c.n, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(c.v[i], 4 - i);
  store_close(s);
}

/* ---- results ---- */

typedef struct page {
  int n;
  int64_t nonce[16];
  int64_t ts[16];
  char json[16][32];
} page;

static int collect_page(void *ctx, int64_t nonce, int64_t ts, const char *json) {
  page *p = ctx;
  p->nonce[p->n] = nonce;
  p->ts[p->n] = ts;
  snprintf(p->json[p->n], sizeof p->json[0], "%s", json);
  p->n++;
  return 0;
}

static int stop_at_two(void *ctx, int64_t nonce, int64_t ts, const char *json) {
  return ++*(int *)ctx == 2;
}

static void test_results(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  assert_int_equal(store_result_last_nonce(s, "P", &e), -1);
  for (int i = 0; i < 10; i++) {
    char mid[16], json[32];
    snprintf(mid, sizeof mid, "m%d", i);
    snprintf(json, sizeof json, "{\"n\":%d}", i);
    assert_int_equal(store_result_put(s, "P", i, mid, 100 + i, json, &e), 0);
  }
  char *j = NULL;
  assert_int_equal(store_result_get(s, "m3", &j, &e), 1);
  assert_string_equal(j, "{\"n\":3}");
  free(j);
  assert_int_equal(store_result_get(s, "nope", &j, &e), 0);
  assert_null(j);
  /* Upsert replaces the row of (pid, nonce). */
  assert_int_equal(store_result_put(s, "P", 3, "m3", 999, "{\"n\":33}", &e), 0);
  assert_int_equal(store_result_get(s, "m3", &j, &e), 1);
  assert_string_equal(j, "{\"n\":33}");
  free(j);
  assert_int_equal(store_result_by_nonce(s, "P", 3, &j, &e), 1);
  assert_string_equal(j, "{\"n\":33}");
  free(j);
  assert_int_equal(store_result_by_nonce(s, "P", 42, &j, &e), 0);
  assert_int_equal(store_result_last_nonce(s, "P", &e), 9);
  assert_int_equal(store_result_last_nonce(s, "Q", &e), -1);

  page p = {0};
  assert_int_equal(store_result_page(s, "P", -1, INT64_MAX, 1, 0, collect_page, &p, &e), 10);
  for (int i = 0; i < 10; i++) assert_int_equal(p.nonce[i], i);
  assert_int_equal(p.ts[3], 999);
  assert_string_equal(p.json[3], "{\"n\":33}");

  memset(&p, 0, sizeof p); /* (2, 7) exclusive, ascending */
  assert_int_equal(store_result_page(s, "P", 2, 7, 1, 100, collect_page, &p, &e), 4);
  for (int i = 0; i < 4; i++) assert_int_equal(p.nonce[i], 3 + i);

  memset(&p, 0, sizeof p); /* descending, limited */
  assert_int_equal(store_result_page(s, "P", 2, 7, 0, 3, collect_page, &p, &e), 3);
  assert_int_equal(p.nonce[0], 6);
  assert_int_equal(p.nonce[1], 5);
  assert_int_equal(p.nonce[2], 4);

  memset(&p, 0, sizeof p); /* the newest 2 */
  assert_int_equal(store_result_page(s, "P", -1, INT64_MAX, 0, 2, collect_page, &p, &e), 2);
  assert_int_equal(p.nonce[0], 9);
  assert_int_equal(p.nonce[1], 8);

  int calls = 0; /* fn returning non-zero stops the page */
  assert_int_equal(store_result_page(s, "P", -1, INT64_MAX, 1, 0, stop_at_two, &calls, &e), 2);
  assert_int_equal(calls, 2);

  memset(&p, 0, sizeof p); /* empty window */
  assert_int_equal(store_result_page(s, "P", 4, 5, 1, 10, collect_page, &p, &e), 0);
  assert_int_equal(store_result_page(s, "Q", -1, INT64_MAX, 1, 10, collect_page, &p, &e), 0);
  store_close(s);
}

/* ---- cache, seqs, modules, checkpoints, nodes, meta ---- */

static void test_cache_and_seqs(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  char *v = NULL;
  assert_int_equal(store_cache_get(s, "P", "k", &v, &e), 0);
  assert_int_equal(store_cache_put(s, "P", "k", "v1", &e), 0);
  assert_int_equal(store_cache_put(s, "P", "k", "v2", &e), 0);
  assert_int_equal(store_cache_put(s, "Q", "k", "q", &e), 0);
  assert_int_equal(store_cache_get(s, "P", "k", &v, &e), 1);
  assert_string_equal(v, "v2");
  free(v);
  assert_int_equal(store_cache_get(s, "Q", "k", &v, &e), 1);
  assert_string_equal(v, "q");
  free(v);

  int64_t seq = -7;
  assert_int_equal(store_seq_get(s, "P", "S", &seq, &e), 0);
  assert_int_equal(seq, -7); /* untouched when absent */
  assert_int_equal(store_seq_put(s, "P", "S", 1, &e), 0);
  assert_int_equal(store_seq_put(s, "P", "S", 2, &e), 0);
  assert_int_equal(store_seq_put(s, "P", "T", 10, &e), 0);
  assert_int_equal(store_seq_get(s, "P", "S", &seq, &e), 1);
  assert_int_equal(seq, 2);
  assert_int_equal(store_seq_get(s, "P", "T", &seq, &e), 1);
  assert_int_equal(seq, 10);
  store_close(s);
}

static int collect_mod(void *ctx, const char *id, const char *format) {
  names *c = ctx;
  snprintf(c->v[c->n++], sizeof c->v[0], "%s:%s", id, format);
  return 0;
}

static void test_modules(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  assert_int_equal(
      store_module_put(s, "mB", "wasm64-unknown-emscripten", (const uint8_t *)"B", 1, &e), 0);
  assert_int_equal(store_module_put(s, "mA", "lua", (const uint8_t *)"return 1", 8, &e), 0);
  char *fmt;
  uint8_t *raw;
  size_t len;
  assert_int_equal(store_module_get(s, "mA", &fmt, &raw, &len, &e), 1);
  assert_string_equal(fmt, "lua");
  assert_int_equal(len, 8);
  assert_memory_equal(raw, "return 1", 8);
  free(fmt);
  free(raw);
  assert_int_equal(store_module_get(s, "none", &fmt, &raw, &len, &e), 0);
  names c = {0};
  assert_int_equal(store_module_each(s, collect_mod, &c, &e), 0);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.v[0], "mA:lua");
  assert_string_equal(c.v[1], "mB:wasm64-unknown-emscripten");
  store_close(s);
}

static void test_checkpoints(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  int64_t n = -1;
  char *item = NULL, *hash = NULL;
  assert_int_equal(store_checkpoint_latest(s, "P", 100, &n, &item, &hash, &e), 0);
  assert_int_equal(store_checkpoint_put(s, "P", 10, "i10", "h10", &e), 0);
  assert_int_equal(store_checkpoint_put(s, "P", 20, "i20", "h20", &e), 0);
  assert_int_equal(store_checkpoint_put(s, "P", 30, "i30", "h30", &e), 0);
  assert_int_equal(store_checkpoint_put(s, "Q", 25, "q25", "hq", &e), 0);
  assert_int_equal(store_checkpoint_latest(s, "P", 25, &n, &item, &hash, &e), 1);
  assert_int_equal(n, 20);
  assert_string_equal(item, "i20");
  assert_string_equal(hash, "h20");
  free(item);
  free(hash);
  assert_int_equal(store_checkpoint_latest(s, "P", 30, &n, &item, &hash, &e), 1);
  assert_int_equal(n, 30); /* at or below: inclusive */
  free(item);
  free(hash);
  assert_int_equal(store_checkpoint_latest(s, "P", INT64_MAX, &n, &item, &hash, &e), 1);
  assert_int_equal(n, 30);
  free(item);
  free(hash);
  assert_int_equal(store_checkpoint_latest(s, "P", 9, &n, &item, &hash, &e), 0);
  assert_null(item);
  store_close(s);
}

static int collect_node(void *ctx, const store_node *n) {
  names *c = ctx;
  snprintf(c->v[c->n++], sizeof c->v[0], "%s/%s", n->acc_id, n->name ? n->name : "-");
  return 0;
}

static void test_nodes_and_meta(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  store_node n = {.acc_id = "B", .name = "bee", .role = "main", .desc = "d", .url = "http://b"};
  assert_int_equal(store_node_put(s, &n, &e), 0);
  n.name = "bee2";
  n.url = "http://b2";
  assert_int_equal(store_node_put(s, &n, &e), 0); /* upsert */
  store_node a = {.acc_id = "A"};
  assert_int_equal(store_node_put(s, &a, &e), 0);
  store_node g;
  assert_int_equal(store_node_get(s, "B", &g, &e), 1);
  assert_string_equal(g.acc_id, "B");
  assert_string_equal(g.name, "bee2");
  assert_string_equal(g.role, "main");
  assert_string_equal(g.desc, "d");
  assert_string_equal(g.url, "http://b2");
  store_node_clear(&g);
  assert_int_equal(store_node_get(s, "Z", &g, &e), 0);
  names c = {0};
  assert_int_equal(store_node_each(s, collect_node, &c, &e), 0);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.v[0], "A/-");
  assert_string_equal(c.v[1], "B/bee2");

  char *v = NULL;
  assert_int_equal(store_meta_get(s, "k", &v, &e), 0);
  assert_int_equal(store_meta_put(s, "k", "1", &e), 0);
  assert_int_equal(store_meta_put(s, "k", "2", &e), 0);
  assert_int_equal(store_meta_get(s, "k", &v, &e), 1);
  assert_string_equal(v, "2");
  free(v);
  store_close(s);
}

/* ---- transactions and connections ---- */

static void test_nested_transactions(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 1);
  /* begin, begin, write, commit (inner: no-op), rollback: nothing stays. */
  assert_int_equal(store_begin(s, &e), 0);
  assert_int_equal(store_begin(s, &e), 0);
  put_asg(s, "P", 0, "m0");
  assert_int_equal(store_meta_put(s, "k", "v", &e), 0);
  assert_int_equal(store_commit(s, &e), 0);
  store_rollback(s);
  assert_int_equal(store_message_assigned(s, "m0", &e), 0);
  char *v = NULL;
  assert_int_equal(store_meta_get(s, "k", &v, &e), 0);
  /* The outer commit after a rollback reports it. */
  assert_int_equal(store_commit(s, &e), -1);
  assert_string_equal(e.code, "store_io");
  store_rollback(s); /* harmless when nothing is open */

  /* Rollback in the inner level undoes the outer level's writes too. */
  assert_int_equal(store_begin(s, &e), 0);
  put_asg(s, "P", 0, "m0");
  assert_int_equal(store_begin(s, &e), 0);
  put_asg(s, "P", 1, "m1");
  store_rollback(s);
  assert_int_equal(store_message_assigned(s, "m0", &e), 0);

  /* begin, begin, commit, commit: the writes stay. */
  assert_int_equal(store_begin(s, &e), 0);
  assert_int_equal(store_begin(s, &e), 0);
  put_asg(s, "P", 0, "m0");
  assert_int_equal(store_commit(s, &e), 0);
  put_asg(s, "P", 1, "m1");
  assert_int_equal(store_commit(s, &e), 0);
  store_close(s);
  s = open_ok(f->path, 0);
  assert_int_equal(store_message_assigned(s, "m0", &e), 1);
  assert_int_equal(store_message_assigned(s, "m1", &e), 1);
  /* Closing with an open transaction rolls it back. */
  assert_int_equal(store_begin(s, &e), 0);
  put_asg(s, "P", 2, "m2");
  store_close(s);
  s = open_ok(f->path, 0);
  assert_int_equal(store_message_assigned(s, "m2", &e), 0);
  store_close(s);
}

static void test_two_connections(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *w = open_ok(f->path, 1), *r = open_ok(f->path, 0);
  char *j = NULL;
  assert_int_equal(store_begin(w, &e), 0);
  assert_int_equal(store_result_put(w, "P", 0, "m0", 1, "{}", &e), 0);
  /* Not committed: the reader does not see it (and is not blocked). */
  assert_int_equal(store_result_get(r, "m0", &j, &e), 0);
  assert_int_equal(store_commit(w, &e), 0);
  assert_int_equal(store_result_get(r, "m0", &j, &e), 1);
  assert_string_equal(j, "{}");
  free(j);
  /* And the other way round, in autocommit. */
  assert_int_equal(store_meta_put(r, "from", "reader", &e), 0);
  assert_int_equal(store_meta_get(w, "from", &j, &e), 1);
  assert_string_equal(j, "reader");
  free(j);
  store_close(r);
  store_close(w);
}

typedef struct opener {
  const char *path;
  pthread_barrier_t *bar;
  int ok;
  vn_err e;
} opener;

static void *open_thread(void *arg) {
  opener *o = arg;
  pthread_barrier_wait(o->bar);
  store *s = store_open(o->path, 1, &o->e);
  if (s) {
    o->ok = store_meta_put(s, "k", "v", &o->e) == 0;
    store_close(s);
  }
  return NULL;
}

static void test_concurrent_open(void **state) {
  fixture *f = *state;
  enum { THREADS = 4, ROUNDS = 20 };
  for (int round = 0; round < ROUNDS; round++) {
    rm_db(f->path);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, THREADS);
    pthread_t t[THREADS];
    opener o[THREADS];
    for (int i = 0; i < THREADS; i++) {
      o[i] = (opener){.path = f->path, .bar = &bar};
      pthread_create(&t[i], NULL, open_thread, &o[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < THREADS; i++)
      if (!o[i].ok) fail_msg("round %d thread %d: %s: %s", round, i, o[i].e.code, o[i].e.msg);
  }
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  assert_int_equal(store_integrity_check(s, &e), 0);
  store_close(s);
}

static void test_integrity(void **state) {
  fixture *f = *state;
  vn_err e = {0};
  store *s = open_ok(f->path, 0);
  for (int i = 0; i < 100; i++) {
    char mid[16];
    snprintf(mid, sizeof mid, "m%d", i);
    put_asg(s, "P", i, mid);
  }
  assert_int_equal(store_integrity_check(s, &e), 0);
  store_close(s);
}

/* ---- crash safety ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Child: durable store, one committed transaction per nonce, each nonce
 * reported on the pipe only after its commit returned. Runs until killed. */
static void crash_child(const char *path, int wfd) {
  vn_err e = {0};
  store *s = store_open(path, 1, &e);
  if (!s) _exit(2);
  uint8_t raw[512];
  memset(raw, 0xab, sizeof raw);
  for (int64_t n = 0;; n++) {
    char mid[32];
    snprintf(mid, sizeof mid, "crash-%lld", (long long)n);
    store_assignment a = {.pid = "P",
                          .nonce = n,
                          .message_id = mid,
                          .assignment_id = "a",
                          .timestamp_ms = n,
                          .raw = raw,
                          .raw_len = sizeof raw};
    if (store_begin(s, &e) || store_assignment_put(s, &a, &e) ||
        store_result_put(s, "P", n, mid, n, "{\"ok\":true}", &e) || store_commit(s, &e))
      _exit(3);
    if (write(wfd, &n, sizeof n) != (ssize_t)sizeof n) _exit(4);
  }
}

static void test_crash_safety(void **state) {
  fixture *f = *state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(fds[0]);
    crash_child(f->path, fds[1]);
    _exit(0);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);

  /* Wait for the first commit (so the test means something even when fsync
   * is slow), then let it run ~50 ms more and kill it mid-stream. */
  static int64_t reported[1 << 16];
  int n = 0;
  int64_t start = now_ms(), first = -1;
  while (1) {
    int64_t t = now_ms();
    if (first < 0 && t - start > 10000) break;
    if (first >= 0 && t - first >= 50) break;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    poll(&p, 1, 5);
    int64_t v;
    while (n < (1 << 16) && read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) {
      reported[n++] = v;
      if (first < 0) first = now_ms();
    }
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  int64_t v;
  while (n < (1 << 16) && read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) reported[n++] = v;
  close(fds[0]);
  if (n == 0) fail_msg("the child never reported a commit");

  vn_err e = {0};
  store *s = open_ok(f->path, 1);
  assert_int_equal(store_integrity_check(s, &e), 0);
  for (int i = 0; i < n; i++) {
    assert_int_equal(reported[i], i);
    char mid[32], *j = NULL;
    snprintf(mid, sizeof mid, "crash-%lld", (long long)reported[i]);
    if (store_message_assigned(s, mid, &e) != 1) fail_msg("committed nonce %d lost", i);
    assert_int_equal(store_result_get(s, mid, &j, &e), 1);
    free(j);
  }
  /* Nothing beyond what committed is half there: the log is contiguous. */
  int64_t last = store_result_last_nonce(s, "P", &e);
  assert_true(last >= n - 1);
  for (int64_t i = 0; i <= last; i++) {
    store_assignment a;
    assert_int_equal(store_assignment_by_nonce(s, "P", i, &a, &e), 1);
    assert_int_equal(a.raw_len, 512);
    store_assignment_clear(&a);
  }
  store_close(s);
  print_message("crash: %d commits reported, %lld on disk\n", n, (long long)last + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migration_sets_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_new_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migration_failure_rolls_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_items, setup, teardown),
      cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_assignments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_each_reentrant, setup, teardown),
      cmocka_unit_test_setup_teardown(test_results, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_and_seqs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_modules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nodes_and_meta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nested_transactions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_integrity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
