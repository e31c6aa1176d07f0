/* store.c - the node's durable state on SQLite (see store.h, docs/store.md).
 *
 * One `store` wraps one sqlite3 connection plus a cache of prepared
 * statements, one slot per query (enum q below). A statement is prepared the
 * first time it is used and kept until store_close(); after each use it is
 * reset and its bindings cleared, so a hot call costs bind + step + reset.
 *
 * The schema is versioned with PRAGMA user_version. `migrations[i]` takes a
 * database from version i to i+1; store_open() applies the missing steps in
 * one BEGIN IMMEDIATE transaction, re-reading the version inside it so two
 * processes or threads opening the same fresh file do not both migrate. */
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- migrations ---- */

/* Step i takes user_version i to i+1. Add a step by appending an entry and
 * bumping STORE_SCHEMA_VERSION in store.h; never edit a step that shipped.
 * Row-size notes (why some tables are WITHOUT ROWID and others are not) are
 * in docs/store.md. */
static const char *const migrations[] = {
    /* 0 -> 1: the initial schema. */
    "CREATE TABLE items("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  type TEXT NOT NULL DEFAULT '',"
    "  owner TEXT NOT NULL DEFAULT '',"
    "  target TEXT NOT NULL DEFAULT '',"
    "  received_ms INTEGER NOT NULL DEFAULT 0,"
    "  raw BLOB NOT NULL);"
    "CREATE TABLE processes("
    "  pid TEXT PRIMARY KEY NOT NULL,"
    "  module TEXT, owner TEXT, name TEXT, status TEXT, error TEXT,"
    "  nonce INTEGER NOT NULL DEFAULT 0,"
    "  hash_chain BLOB,"
    "  spawn_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX processes_spawn ON processes(spawn_ms, pid);"
    "CREATE TABLE assignments("
    "  pid TEXT NOT NULL,"
    "  nonce INTEGER NOT NULL,"
    "  message_id TEXT NOT NULL UNIQUE,"
    "  assignment_id TEXT NOT NULL DEFAULT '',"
    "  timestamp_ms INTEGER NOT NULL DEFAULT 0,"
    "  raw BLOB NOT NULL,"
    "  PRIMARY KEY(pid, nonce));"
    "CREATE TABLE results("
    "  pid TEXT NOT NULL,"
    "  nonce INTEGER NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  timestamp_ms INTEGER NOT NULL DEFAULT 0,"
    "  json TEXT NOT NULL,"
    "  PRIMARY KEY(pid, nonce));"
    "CREATE INDEX results_message ON results(message_id);"
    "CREATE TABLE cache("
    "  pid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY(pid, key));"
    "CREATE TABLE seqs("
    "  pid TEXT NOT NULL, sender TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  PRIMARY KEY(pid, sender)) WITHOUT ROWID;"
    "CREATE TABLE modules("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  format TEXT NOT NULL DEFAULT '',"
    "  raw BLOB NOT NULL);"
    "CREATE TABLE checkpoints("
    "  pid TEXT NOT NULL, nonce INTEGER NOT NULL,"
    "  item_id TEXT NOT NULL DEFAULT '', image_hash TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY(pid, nonce)) WITHOUT ROWID;"
    "CREATE TABLE nodes("
    "  acc_id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT, role TEXT, description TEXT, url TEXT);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);",
    /* 1 -> 2: messages and spawns emitted by processes, signed, waiting to
     * be delivered (rows go when the target node has them). */
    "CREATE TABLE outbox("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  pid TEXT NOT NULL,"
    "  nonce INTEGER NOT NULL,"
    "  raw BLOB NOT NULL);",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* ---- the statement cache ---- */

enum q {
  Q_BEGIN,
  Q_COMMIT,
  Q_ROLLBACK,
  Q_ITEM_PUT,
  Q_ITEM_GET,
  Q_PROC_PUT,
  Q_PROC_ADVANCE,
  Q_PROC_STATUS,
  Q_PROC_GET,
  Q_PROC_EACH,
  Q_PROC_COUNT,
  Q_ASG_PUT,
  Q_ASG_BY_NONCE,
  Q_ASG_BY_MSG,
  Q_ASG_ASSIGNED,
  Q_ASG_EACH,
  Q_RES_PUT,
  Q_RES_GET,
  Q_RES_BY_NONCE,
  Q_RES_LAST,
  Q_RES_PAGE_ASC,
  Q_RES_PAGE_DESC,
  Q_CACHE_PUT,
  Q_CACHE_GET,
  Q_SEQ_GET,
  Q_SEQ_PUT,
  Q_MOD_PUT,
  Q_MOD_GET,
  Q_MOD_EACH,
  Q_CKPT_PUT,
  Q_CKPT_LATEST,
  Q_NODE_PUT,
  Q_NODE_GET,
  Q_NODE_EACH,
  Q_META_PUT,
  Q_META_GET,
  Q_INTEGRITY,
  Q_OUT_PUT,
  Q_OUT_DEL,
  Q_OUT_EACH,
  Q_COUNT
};

#define PROC_COLS "pid, module, owner, name, status, error, nonce, hash_chain, spawn_ms"
#define ASG_COLS "pid, nonce, message_id, assignment_id, timestamp_ms, raw"

static const char *const q_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_ITEM_PUT] =
        "INSERT INTO items(id, type, owner, target, received_ms, raw)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
    [Q_ITEM_GET] = "SELECT raw FROM items WHERE id = ?1",
    [Q_PROC_PUT] =
        "INSERT INTO processes(" PROC_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_PROC_ADVANCE] = "UPDATE processes SET nonce = ?2, hash_chain = ?3 WHERE pid = ?1",
    [Q_PROC_STATUS] = "UPDATE processes SET status = ?2, error = ?3 WHERE pid = ?1",
    [Q_PROC_GET] = "SELECT " PROC_COLS " FROM processes WHERE pid = ?1",
    [Q_PROC_EACH] = "SELECT " PROC_COLS " FROM processes ORDER BY spawn_ms, pid",
    [Q_PROC_COUNT] = "SELECT count(*) FROM processes",
    [Q_ASG_PUT] = "INSERT INTO assignments(" ASG_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_ASG_BY_NONCE] = "SELECT " ASG_COLS " FROM assignments WHERE pid = ?1 AND nonce = ?2",
    [Q_ASG_BY_MSG] = "SELECT " ASG_COLS " FROM assignments WHERE message_id = ?1",
    [Q_ASG_ASSIGNED] = "SELECT 1 FROM assignments WHERE message_id = ?1",
    [Q_ASG_EACH] = "SELECT " ASG_COLS
                   " FROM assignments WHERE pid = ?1 AND nonce >= ?2"
                   " ORDER BY nonce",
    [Q_RES_PUT] =
        "INSERT INTO results(pid, nonce, message_id, timestamp_ms, json)"
        " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(pid, nonce) DO UPDATE SET"
        " message_id = excluded.message_id, timestamp_ms = excluded.timestamp_ms,"
        " json = excluded.json",
    [Q_RES_GET] = "SELECT json FROM results WHERE message_id = ?1 LIMIT 1",
    [Q_RES_BY_NONCE] = "SELECT json FROM results WHERE pid = ?1 AND nonce = ?2",
    [Q_RES_LAST] = "SELECT max(nonce) FROM results WHERE pid = ?1",
    [Q_RES_PAGE_ASC] =
        "SELECT nonce, timestamp_ms, json FROM results"
        " WHERE pid = ?1 AND nonce > ?2 AND nonce < ?3 ORDER BY nonce ASC LIMIT ?4",
    [Q_RES_PAGE_DESC] =
        "SELECT nonce, timestamp_ms, json FROM results"
        " WHERE pid = ?1 AND nonce > ?2 AND nonce < ?3 ORDER BY nonce DESC LIMIT ?4",
    [Q_CACHE_PUT] =
        "INSERT INTO cache(pid, key, value) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(pid, key) DO UPDATE SET value = excluded.value",
    [Q_CACHE_GET] = "SELECT value FROM cache WHERE pid = ?1 AND key = ?2",
    [Q_SEQ_GET] = "SELECT seq FROM seqs WHERE pid = ?1 AND sender = ?2",
    [Q_SEQ_PUT] =
        "INSERT INTO seqs(pid, sender, seq) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(pid, sender) DO UPDATE SET seq = excluded.seq",
    [Q_MOD_PUT] =
        "INSERT INTO modules(id, format, raw) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(id) DO UPDATE SET format = excluded.format, raw = excluded.raw",
    [Q_MOD_GET] = "SELECT format, raw FROM modules WHERE id = ?1",
    [Q_MOD_EACH] = "SELECT id, format FROM modules ORDER BY id",
    [Q_CKPT_PUT] =
        "INSERT INTO checkpoints(pid, nonce, item_id, image_hash) VALUES(?1, ?2, ?3, ?4)"
        " ON CONFLICT(pid, nonce) DO UPDATE SET item_id = excluded.item_id,"
        " image_hash = excluded.image_hash",
    [Q_CKPT_LATEST] =
        "SELECT nonce, item_id, image_hash FROM checkpoints"
        " WHERE pid = ?1 AND nonce <= ?2 ORDER BY nonce DESC LIMIT 1",
    [Q_NODE_PUT] =
        "INSERT INTO nodes(acc_id, name, role, description, url) VALUES(?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT(acc_id) DO UPDATE SET name = excluded.name, role = excluded.role,"
        " description = excluded.description, url = excluded.url",
    [Q_NODE_GET] = "SELECT acc_id, name, role, description, url FROM nodes WHERE acc_id = ?1",
    [Q_NODE_EACH] = "SELECT acc_id, name, role, description, url FROM nodes ORDER BY acc_id",
    [Q_META_PUT] =
        "INSERT INTO meta(key, value) VALUES(?1, ?2)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_INTEGRITY] = "PRAGMA integrity_check",
    [Q_OUT_PUT] =
        "INSERT INTO outbox(id, pid, nonce, raw) VALUES(?1, ?2, ?3, ?4)"
        " ON CONFLICT(id) DO NOTHING",
    [Q_OUT_DEL] = "DELETE FROM outbox WHERE id = ?1",
    [Q_OUT_EACH] = "SELECT id, pid, nonce, raw FROM outbox ORDER BY seq",
};

/* How long a statement waits for another connection's lock before failing
 * with SQLITE_BUSY (store_io). */
#define STORE_BUSY_TIMEOUT_MS 10000

struct store {
  sqlite3 *db;
  int depth; /* store_begin nesting; only 0 <-> 1 touches SQLite */
  sqlite3_stmt *q[Q_COUNT];
};

/* ---- error helpers ---- */

static int io_err(store *s, vn_err *err, const char *what) {
  return vn_errh(err, 500, "store_io", "store: %s: %s (sqlite error %d)", what,
                 sqlite3_errmsg(s->db), sqlite3_extended_errcode(s->db));
}

static int oom_err(vn_err *err, const char *what) {
  return vn_errh(err, 500, "store_io", "store: %s: out of memory", what);
}

/* ---- statement cache ---- */

/* The cached statement for `id`, prepared on first use. When the cached one
 * is mid-iteration (a *_each callback calling back into the store with the
 * same query), a temporary statement is prepared instead; q_done() tells the
 * two apart and finalizes the temporary one. */
static sqlite3_stmt *q_get(store *s, enum q id, vn_err *err, const char *what) {
  sqlite3_stmt *st = s->q[id];
  if (st && !sqlite3_stmt_busy(st)) return st;
  unsigned flags = st ? 0 : SQLITE_PREPARE_PERSISTENT;
  sqlite3_stmt *fresh = NULL;
  if (sqlite3_prepare_v3(s->db, q_sql[id], -1, flags, &fresh, NULL) != SQLITE_OK) {
    io_err(s, err, what);
    sqlite3_finalize(fresh);
    return NULL;
  }
  if (!st) s->q[id] = fresh;
  return fresh;
}

static void q_done(store *s, enum q id, sqlite3_stmt *st) {
  if (!st) return;
  if (st == s->q[id]) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
}

/* Strings are bound SQLITE_STATIC: every statement is stepped and reset
 * before the function that bound it returns, while the caller's memory lives. */
static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* NULL means "absent" for optional strings; stored as ''. */
static void bind_text0(sqlite3_stmt *st, int i, const char *v) {
  sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

/* Always a blob (zero-length when raw is NULL), never SQL NULL. */
static void bind_blob(sqlite3_stmt *st, int i, const uint8_t *raw, size_t len) {
  if (!raw || !len)
    sqlite3_bind_zeroblob(st, i, 0);
  else
    sqlite3_bind_blob64(st, i, raw, (sqlite3_uint64)len, SQLITE_STATIC);
}

/* Run a statement that returns no rows. */
static int exec_q(store *s, enum q id, sqlite3_stmt *st, vn_err *err, const char *what) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) io_err(s, err, what);
  q_done(s, id, st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- column readers ---- */

/* Pointer into SQLite's row memory; valid until the next step/reset. */
static char *col_view(sqlite3_stmt *st, int i) {
  return (char *)sqlite3_column_text(st, i);
}

/* malloc'd copy of a text column; NULL for SQL NULL. *oom set on failure. */
static char *col_dup(sqlite3_stmt *st, int i, int *oom) {
  const unsigned char *t = sqlite3_column_text(st, i);
  if (!t) return NULL;
  size_t n = (size_t)sqlite3_column_bytes(st, i);
  char *c = malloc(n + 1);
  if (!c) {
    *oom = 1;
    return NULL;
  }
  memcpy(c, t, n);
  c[n] = 0;
  return c;
}

static char *str_dup(const char *v, int *oom) {
  if (!v) return NULL;
  size_t n = strlen(v);
  char *c = malloc(n + 1);
  if (!c) {
    *oom = 1;
    return NULL;
  }
  memcpy(c, v, n + 1);
  return c;
}

/* malloc'd copy of a blob column (never NULL on success, even when empty). */
static uint8_t *col_blob_dup(sqlite3_stmt *st, int i, size_t *len, int *oom) {
  const void *b = sqlite3_column_blob(st, i);
  size_t n = (size_t)sqlite3_column_bytes(st, i);
  uint8_t *c = malloc(n ? n : 1);
  if (!c) {
    *oom = 1;
    *len = 0;
    return NULL;
  }
  if (n) memcpy(c, b, n);
  *len = n;
  return c;
}

/* Run a one-column lookup whose result is a malloc'd string in *out. */
static int get_text(store *s, enum q id, sqlite3_stmt *st, char **out, vn_err *err,
                    const char *what) {
  *out = NULL;
  int rc = sqlite3_step(st), ret;
  if (rc == SQLITE_ROW) {
    int oom = 0;
    *out = col_dup(st, 0, &oom);
    if (!*out && !oom) *out = str_dup("", &oom);
    ret = oom ? oom_err(err, what) : 1;
  } else if (rc == SQLITE_DONE) {
    ret = 0;
  } else {
    ret = io_err(s, err, what);
  }
  q_done(s, id, st);
  return ret;
}

/* ---- open / close ---- */

static int pragma_int(sqlite3 *db, const char *sql, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int(st, 0);
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  return rc == SQLITE_OK ? 0 : -1;
}

static int too_new(vn_err *err, int v) {
  return vn_errh(err, 500, "store_too_new",
                 "data dir was written by a newer vmnode (schema %d, this build knows %d)", v,
                 STORE_SCHEMA_VERSION);
}

/* Bring the schema to STORE_SCHEMA_VERSION. The version is read once
 * outside a transaction (the common case: nothing to do) and again under
 * BEGIN IMMEDIATE, which holds the write lock, so concurrent openers of a
 * fresh file migrate exactly once and the others see the result. */
static int migrate(store *s, vn_err *err) {
  int v = 0;
  if (pragma_int(s->db, "PRAGMA user_version", &v)) return io_err(s, err, "reading schema version");
  if (v > STORE_SCHEMA_VERSION) return too_new(err, v);
  if (v == STORE_SCHEMA_VERSION) return 0;

  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return io_err(s, err, "starting the schema migration");
  if (pragma_int(s->db, "PRAGMA user_version", &v)) {
    io_err(s, err, "reading schema version");
    goto fail;
  }
  if (v > STORE_SCHEMA_VERSION) {
    too_new(err, v);
    goto fail;
  }
  for (; v < STORE_SCHEMA_VERSION; v++) {
    if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
      char what[64];
      snprintf(what, sizeof what, "migrating schema %d to %d", v, v + 1);
      io_err(s, err, what);
      goto fail;
    }
  }
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
    io_err(s, err, "setting schema version");
    goto fail;
  }
  if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    io_err(s, err, "committing the schema migration");
    goto fail;
  }
  return 0;
fail:
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

/* Switch the file to WAL (a no-op when it already is; the mode is stored in
 * the file). Changing the journal mode needs an exclusive lock and SQLite
 * returns SQLITE_BUSY for it without calling the busy handler, so two
 * openers of a fresh file race here: retry for up to the busy timeout. */
static int set_wal(store *s, const char *path, vn_err *err) {
  for (int waited_ms = 0;; waited_ms += 5) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const char *mode = (const char *)sqlite3_column_text(st, 0);
      /* "memory" is what an in-memory database (":memory:") reports. */
      int ok = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
      if (!ok)
        vn_errh(err, 500, "store_io", "store: %s: cannot use WAL mode (journal_mode is %s)", path,
                mode ? mode : "unknown");
      sqlite3_finalize(st);
      return ok ? 0 : -1;
    }
    sqlite3_finalize(st);
    if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= STORE_BUSY_TIMEOUT_MS) {
      io_err(s, err, "setting journal_mode=WAL");
      vn_err_wrap(err, "%s", path);
      return -1;
    }
    sqlite3_sleep(5);
  }
}

store *store_open(const char *path, int durable, vn_err *err) {
  store *s = calloc(1, sizeof *s);
  if (!s) {
    oom_err(err, "opening");
    return NULL;
  }
  /* NOMUTEX: a store is used by one thread at a time (store.h), so SQLite's
   * per-connection mutex is pure overhead. */
  int rc = sqlite3_open_v2(path, &s->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    if (s->db)
      vn_errh(err, 500, "store_io", "store: opening %s: %s", path, sqlite3_errmsg(s->db));
    else
      oom_err(err, "opening");
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

  /* Refuse a newer schema before changing anything in the file. */
  int v = 0;
  if (pragma_int(s->db, "PRAGMA user_version", &v)) {
    io_err(s, err, "reading schema version");
    vn_err_wrap(err, "%s", path);
    goto fail;
  }
  if (v > STORE_SCHEMA_VERSION) {
    too_new(err, v);
    goto fail;
  }

  if (set_wal(s, path, err)) goto fail;

  const char *sync = durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  if (sqlite3_exec(s->db, sync, NULL, NULL, NULL) != SQLITE_OK) {
    io_err(s, err, "setting synchronous");
    goto fail;
  }
  if (migrate(s, err)) {
    vn_err_wrap(err, "%s", path);
    goto fail;
  }
  return s;
fail:
  sqlite3_close_v2(s->db);
  free(s);
  return NULL;
}

void store_close(store *s) {
  if (!s) return;
  if (s->depth > 0 || !sqlite3_get_autocommit(s->db))
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  for (int i = 0; i < Q_COUNT; i++) sqlite3_finalize(s->q[i]);
  sqlite3_close_v2(s->db);
  free(s);
}

/* ---- transactions ---- */

int store_begin(store *s, vn_err *err) {
  if (s->depth > 0) {
    s->depth++;
    return 0;
  }
  sqlite3_stmt *st = q_get(s, Q_BEGIN, err, "begin");
  if (!st || exec_q(s, Q_BEGIN, st, err, "begin")) return -1;
  s->depth = 1;
  return 0;
}

int store_commit(store *s, vn_err *err) {
  if (s->depth <= 0)
    return vn_errh(err, 500, "store_io", "store: commit without a transaction (rolled back?)");
  if (--s->depth > 0) return 0;
  /* SQLite rolls back by itself on some errors (disk full, I/O): then there
   * is nothing to commit and the caller's writes are gone. */
  if (sqlite3_get_autocommit(s->db))
    return vn_errh(err, 500, "store_io",
                   "store: commit: the transaction was rolled back by SQLite");
  sqlite3_stmt *st = q_get(s, Q_COMMIT, err, "commit");
  if (st && exec_q(s, Q_COMMIT, st, err, "commit") == 0) return 0;
  /* A failed COMMIT may leave the transaction open; close it so the
   * connection is usable again. */
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

void store_rollback(store *s) {
  if (s->depth == 0 && sqlite3_get_autocommit(s->db)) return;
  s->depth = 0;
  if (sqlite3_get_autocommit(s->db)) return;
  sqlite3_stmt *st = q_get(s, Q_ROLLBACK, NULL, "rollback");
  if (st)
    exec_q(s, Q_ROLLBACK, st, NULL, "rollback");
  else
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- items ---- */

int store_item_put(store *s, const store_item_meta *m, const uint8_t *raw, size_t len,
                   vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_ITEM_PUT, err, "storing item");
  if (!st) return -1;
  bind_text(st, 1, m->id);
  bind_text0(st, 2, m->type);
  bind_text0(st, 3, m->owner);
  bind_text0(st, 4, m->target);
  sqlite3_bind_int64(st, 5, m->received_ms);
  bind_blob(st, 6, raw, len);
  if (exec_q(s, Q_ITEM_PUT, st, err, "storing item")) return -1;
  return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

int store_item_get(store *s, const char *id, uint8_t **raw, size_t *len, vn_err *err) {
  *raw = NULL;
  *len = 0;
  sqlite3_stmt *st = q_get(s, Q_ITEM_GET, err, "reading item");
  if (!st) return -1;
  bind_text(st, 1, id);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    int oom = 0;
    *raw = col_blob_dup(st, 0, len, &oom);
    ret = oom ? oom_err(err, "reading item") : 1;
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading item");
  }
  q_done(s, Q_ITEM_GET, st);
  return ret;
}

/* ---- processes ---- */

void store_process_clear(store_process *p) {
  if (!p) return;
  free(p->pid);
  free(p->module);
  free(p->owner);
  free(p->name);
  free(p->status);
  free(p->error);
  memset(p, 0, sizeof *p);
}

/* Row of PROC_COLS as views into the statement (valid until next step). */
static void proc_view(sqlite3_stmt *st, store_process *p) {
  p->pid = col_view(st, 0);
  p->module = col_view(st, 1);
  p->owner = col_view(st, 2);
  p->name = col_view(st, 3);
  p->status = col_view(st, 4);
  p->error = col_view(st, 5);
  p->nonce = sqlite3_column_int64(st, 6);
  memset(p->hash_chain, 0, sizeof p->hash_chain);
  const void *h = sqlite3_column_blob(st, 7);
  size_t hn = (size_t)sqlite3_column_bytes(st, 7);
  if (h) memcpy(p->hash_chain, h, hn < 32 ? hn : 32);
  p->spawn_ms = sqlite3_column_int64(st, 8);
}

int store_process_put(store *s, const store_process *p, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_PROC_PUT, err, "storing process");
  if (!st) return -1;
  bind_text(st, 1, p->pid);
  bind_text(st, 2, p->module);
  bind_text(st, 3, p->owner);
  bind_text(st, 4, p->name);
  bind_text(st, 5, p->status);
  bind_text(st, 6, p->error);
  sqlite3_bind_int64(st, 7, p->nonce);
  sqlite3_bind_blob(st, 8, p->hash_chain, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 9, p->spawn_ms);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
    ret = vn_errh(err, 409, "process_exists", "store: process %s exists already",
                  p->pid ? p->pid : "");
  else if (rc != SQLITE_DONE)
    ret = io_err(s, err, "storing process");
  q_done(s, Q_PROC_PUT, st);
  return ret;
}

static int proc_update(store *s, enum q id, sqlite3_stmt *st, const char *pid, vn_err *err,
                       const char *what) {
  if (exec_q(s, id, st, err, what)) return -1;
  if (sqlite3_changes(s->db) == 0)
    return vn_errh(err, 404, "process_not_found", "store: %s: no process %s", what, pid);
  return 0;
}

int store_process_advance(store *s, const char *pid, int64_t nonce, const uint8_t hash_chain[32],
                          vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_PROC_ADVANCE, err, "advancing process");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, nonce);
  sqlite3_bind_blob(st, 3, hash_chain, 32, SQLITE_STATIC);
  return proc_update(s, Q_PROC_ADVANCE, st, pid, err, "advancing process");
}

int store_process_set_status(store *s, const char *pid, const char *status, const char *error,
                             vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_PROC_STATUS, err, "setting process status");
  if (!st) return -1;
  bind_text(st, 1, pid);
  bind_text(st, 2, status);
  bind_text(st, 3, error);
  return proc_update(s, Q_PROC_STATUS, st, pid, err, "setting process status");
}

int store_process_get(store *s, const char *pid, store_process *out, vn_err *err) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = q_get(s, Q_PROC_GET, err, "reading process");
  if (!st) return -1;
  bind_text(st, 1, pid);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    store_process v;
    int oom = 0;
    proc_view(st, &v);
    *out = v;
    out->pid = str_dup(v.pid, &oom);
    out->module = str_dup(v.module, &oom);
    out->owner = str_dup(v.owner, &oom);
    out->name = str_dup(v.name, &oom);
    out->status = str_dup(v.status, &oom);
    out->error = str_dup(v.error, &oom);
    if (oom) {
      store_process_clear(out);
      ret = oom_err(err, "reading process");
    } else {
      ret = 1;
    }
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading process");
  }
  q_done(s, Q_PROC_GET, st);
  return ret;
}

int store_process_each(store *s, int (*fn)(void *ctx, const store_process *p), void *ctx,
                       vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_PROC_EACH, err, "listing processes");
  if (!st) return -1;
  int rc, ret = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_process v;
    proc_view(st, &v);
    if (fn(ctx, &v)) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = io_err(s, err, "listing processes");
  q_done(s, Q_PROC_EACH, st);
  return ret;
}

int64_t store_process_count(store *s) {
  sqlite3_stmt *st = q_get(s, Q_PROC_COUNT, NULL, "counting processes");
  if (!st) return -1;
  int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  q_done(s, Q_PROC_COUNT, st);
  return n;
}

/* ---- assignments ---- */

void store_assignment_clear(store_assignment *a) {
  if (!a) return;
  free(a->pid);
  free(a->message_id);
  free(a->assignment_id);
  free(a->raw);
  memset(a, 0, sizeof *a);
}

static void asg_view(sqlite3_stmt *st, store_assignment *a) {
  a->pid = col_view(st, 0);
  a->nonce = sqlite3_column_int64(st, 1);
  a->message_id = col_view(st, 2);
  a->assignment_id = col_view(st, 3);
  a->timestamp_ms = sqlite3_column_int64(st, 4);
  a->raw = (uint8_t *)sqlite3_column_blob(st, 5);
  a->raw_len = (size_t)sqlite3_column_bytes(st, 5);
}

/* Step a statement of ASG_COLS that yields at most one row into *out. */
static int asg_one(store *s, enum q id, sqlite3_stmt *st, store_assignment *out, vn_err *err,
                   const char *what) {
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    int oom = 0;
    out->pid = col_dup(st, 0, &oom);
    out->nonce = sqlite3_column_int64(st, 1);
    out->message_id = col_dup(st, 2, &oom);
    out->assignment_id = col_dup(st, 3, &oom);
    out->timestamp_ms = sqlite3_column_int64(st, 4);
    out->raw = col_blob_dup(st, 5, &out->raw_len, &oom);
    if (oom) {
      store_assignment_clear(out);
      ret = oom_err(err, what);
    } else {
      ret = 1;
    }
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, what);
  }
  q_done(s, id, st);
  return ret;
}

int store_assignment_put(store *s, const store_assignment *a, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_ASG_PUT, err, "storing assignment");
  if (!st) return -1;
  bind_text(st, 1, a->pid);
  sqlite3_bind_int64(st, 2, a->nonce);
  bind_text(st, 3, a->message_id);
  bind_text0(st, 4, a->assignment_id);
  sqlite3_bind_int64(st, 5, a->timestamp_ms);
  bind_blob(st, 6, a->raw, a->raw_len);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    q_done(s, Q_ASG_PUT, st);
    return 0;
  }
  if (rc != SQLITE_CONSTRAINT_PRIMARYKEY && rc != SQLITE_CONSTRAINT_UNIQUE) {
    io_err(s, err, "storing assignment");
    q_done(s, Q_ASG_PUT, st);
    return -1;
  }
  q_done(s, Q_ASG_PUT, st);
  /* Which constraint: a lookup is exact where parsing errmsg would not be.
   * When both hold, the message being assigned already is the answer that
   * matters to the sender. The failed INSERT only aborted itself, so an
   * enclosing transaction is still open and usable. */
  vn_err tmp = {0};
  int dup = store_message_assigned(s, a->message_id, &tmp);
  if (dup < 0) {
    if (err) *err = tmp;
    return -1;
  }
  if (dup)
    return vn_errh(err, 409, "duplicate_message", "store: message %s is already assigned",
                   a->message_id);
  return vn_errh(err, 409, "nonce_taken", "store: nonce %lld of process %s is taken",
                 (long long)a->nonce, a->pid ? a->pid : "");
}

int store_assignment_by_nonce(store *s, const char *pid, int64_t nonce, store_assignment *out,
                              vn_err *err) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = q_get(s, Q_ASG_BY_NONCE, err, "reading assignment");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, nonce);
  return asg_one(s, Q_ASG_BY_NONCE, st, out, err, "reading assignment");
}

int store_assignment_by_message(store *s, const char *message_id, store_assignment *out,
                                vn_err *err) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = q_get(s, Q_ASG_BY_MSG, err, "reading assignment");
  if (!st) return -1;
  bind_text(st, 1, message_id);
  return asg_one(s, Q_ASG_BY_MSG, st, out, err, "reading assignment");
}

int store_message_assigned(store *s, const char *message_id, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_ASG_ASSIGNED, err, "looking up assignment");
  if (!st) return -1;
  bind_text(st, 1, message_id);
  int rc = sqlite3_step(st), ret;
  if (rc == SQLITE_ROW)
    ret = 1;
  else if (rc == SQLITE_DONE)
    ret = 0;
  else
    ret = io_err(s, err, "looking up assignment");
  q_done(s, Q_ASG_ASSIGNED, st);
  return ret;
}

int store_assignment_each(store *s, const char *pid, int64_t from,
                          int (*fn)(void *ctx, const store_assignment *a), void *ctx, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_ASG_EACH, err, "reading the log");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, from);
  int rc, ret = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_assignment v;
    asg_view(st, &v);
    if (fn(ctx, &v)) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = io_err(s, err, "reading the log");
  q_done(s, Q_ASG_EACH, st);
  return ret;
}

/* ---- results ---- */

int store_result_put(store *s, const char *pid, int64_t nonce, const char *message_id,
                     int64_t timestamp_ms, const char *json, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_RES_PUT, err, "storing result");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, nonce);
  bind_text(st, 3, message_id);
  sqlite3_bind_int64(st, 4, timestamp_ms);
  bind_text(st, 5, json);
  return exec_q(s, Q_RES_PUT, st, err, "storing result");
}

int store_result_get(store *s, const char *message_id, char **json, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_RES_GET, err, "reading result");
  if (!st) {
    *json = NULL;
    return -1;
  }
  bind_text(st, 1, message_id);
  return get_text(s, Q_RES_GET, st, json, err, "reading result");
}

int store_result_by_nonce(store *s, const char *pid, int64_t nonce, char **json, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_RES_BY_NONCE, err, "reading result");
  if (!st) {
    *json = NULL;
    return -1;
  }
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, nonce);
  return get_text(s, Q_RES_BY_NONCE, st, json, err, "reading result");
}

int64_t store_result_last_nonce(store *s, const char *pid, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_RES_LAST, err, "reading last result");
  if (!st) return -1;
  bind_text(st, 1, pid);
  int64_t n = -1;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) n = sqlite3_column_int64(st, 0);
  } else {
    io_err(s, err, "reading last result");
  }
  q_done(s, Q_RES_LAST, st);
  return n;
}

int store_result_page(store *s, const char *pid, int64_t after, int64_t before, int asc, int limit,
                      int (*fn)(void *ctx, int64_t nonce, int64_t ts, const char *json), void *ctx,
                      vn_err *err) {
  enum q id = asc ? Q_RES_PAGE_ASC : Q_RES_PAGE_DESC;
  sqlite3_stmt *st = q_get(s, id, err, "paging results");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int64(st, 3, before);
  sqlite3_bind_int64(st, 4, limit > 0 ? limit : -1); /* LIMIT -1: no limit */
  int rc, n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    n++;
    if (fn && fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), col_view(st, 2)))
      break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) n = io_err(s, err, "paging results");
  q_done(s, id, st);
  return n;
}

/* ---- cache ---- */

int store_cache_put(store *s, const char *pid, const char *key, const char *value, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_CACHE_PUT, err, "storing cache entry");
  if (!st) return -1;
  bind_text(st, 1, pid);
  bind_text(st, 2, key);
  bind_text(st, 3, value);
  return exec_q(s, Q_CACHE_PUT, st, err, "storing cache entry");
}

int store_cache_get(store *s, const char *pid, const char *key, char **value, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_CACHE_GET, err, "reading cache entry");
  if (!st) {
    *value = NULL;
    return -1;
  }
  bind_text(st, 1, pid);
  bind_text(st, 2, key);
  return get_text(s, Q_CACHE_GET, st, value, err, "reading cache entry");
}

/* ---- seqs ---- */

int store_seq_get(store *s, const char *pid, const char *from, int64_t *seq, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_SEQ_GET, err, "reading sequence");
  if (!st) return -1;
  bind_text(st, 1, pid);
  bind_text(st, 2, from);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    *seq = sqlite3_column_int64(st, 0);
    ret = 1;
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading sequence");
  }
  q_done(s, Q_SEQ_GET, st);
  return ret;
}

int store_seq_put(store *s, const char *pid, const char *from, int64_t seq, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_SEQ_PUT, err, "storing sequence");
  if (!st) return -1;
  bind_text(st, 1, pid);
  bind_text(st, 2, from);
  sqlite3_bind_int64(st, 3, seq);
  return exec_q(s, Q_SEQ_PUT, st, err, "storing sequence");
}

/* ---- modules ---- */

int store_module_put(store *s, const char *id, const char *format, const uint8_t *raw, size_t len,
                     vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_MOD_PUT, err, "storing module");
  if (!st) return -1;
  bind_text(st, 1, id);
  bind_text0(st, 2, format);
  bind_blob(st, 3, raw, len);
  return exec_q(s, Q_MOD_PUT, st, err, "storing module");
}

int store_module_get(store *s, const char *id, char **format, uint8_t **raw, size_t *len,
                     vn_err *err) {
  /* raw and len may be NULL when only the format is wanted. */
  uint8_t *rawv = NULL;
  size_t lenv = 0;
  *format = NULL;
  sqlite3_stmt *st = q_get(s, Q_MOD_GET, err, "reading module");
  if (!st) return -1;
  bind_text(st, 1, id);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    int oom = 0;
    *format = col_dup(st, 0, &oom);
    if (raw) rawv = col_blob_dup(st, 1, &lenv, &oom);
    if (oom) {
      free(*format);
      free(rawv);
      *format = NULL;
      rawv = NULL;
      lenv = 0;
      ret = oom_err(err, "reading module");
    } else {
      ret = 1;
    }
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading module");
  }
  if (raw) *raw = rawv;
  if (len) *len = lenv;
  q_done(s, Q_MOD_GET, st);
  return ret;
}

int store_module_each(store *s, int (*fn)(void *ctx, const char *id, const char *format), void *ctx,
                      vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_MOD_EACH, err, "listing modules");
  if (!st) return -1;
  int rc, ret = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (fn(ctx, col_view(st, 0), col_view(st, 1))) break;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = io_err(s, err, "listing modules");
  q_done(s, Q_MOD_EACH, st);
  return ret;
}

/* ---- checkpoints ---- */

int store_checkpoint_put(store *s, const char *pid, int64_t nonce, const char *item_id,
                         const char *image_hash, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_CKPT_PUT, err, "storing checkpoint");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, nonce);
  bind_text0(st, 3, item_id);
  bind_text0(st, 4, image_hash);
  return exec_q(s, Q_CKPT_PUT, st, err, "storing checkpoint");
}

int store_checkpoint_latest(store *s, const char *pid, int64_t max_nonce, int64_t *nonce,
                            char **item_id, char **image_hash, vn_err *err) {
  *item_id = NULL;
  *image_hash = NULL;
  sqlite3_stmt *st = q_get(s, Q_CKPT_LATEST, err, "reading checkpoint");
  if (!st) return -1;
  bind_text(st, 1, pid);
  sqlite3_bind_int64(st, 2, max_nonce);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    int oom = 0;
    *nonce = sqlite3_column_int64(st, 0);
    *item_id = col_dup(st, 1, &oom);
    *image_hash = col_dup(st, 2, &oom);
    if (oom) {
      free(*item_id);
      free(*image_hash);
      *item_id = *image_hash = NULL;
      ret = oom_err(err, "reading checkpoint");
    } else {
      ret = 1;
    }
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading checkpoint");
  }
  q_done(s, Q_CKPT_LATEST, st);
  return ret;
}

/* ---- nodes ---- */

void store_node_clear(store_node *n) {
  if (!n) return;
  free(n->acc_id);
  free(n->name);
  free(n->role);
  free(n->desc);
  free(n->url);
  memset(n, 0, sizeof *n);
}

static void node_view(sqlite3_stmt *st, store_node *n) {
  n->acc_id = col_view(st, 0);
  n->name = col_view(st, 1);
  n->role = col_view(st, 2);
  n->desc = col_view(st, 3);
  n->url = col_view(st, 4);
}

int store_node_put(store *s, const store_node *n, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_NODE_PUT, err, "storing node");
  if (!st) return -1;
  bind_text(st, 1, n->acc_id);
  bind_text(st, 2, n->name);
  bind_text(st, 3, n->role);
  bind_text(st, 4, n->desc);
  bind_text(st, 5, n->url);
  return exec_q(s, Q_NODE_PUT, st, err, "storing node");
}

int store_node_get(store *s, const char *acc_id, store_node *out, vn_err *err) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = q_get(s, Q_NODE_GET, err, "reading node");
  if (!st) return -1;
  bind_text(st, 1, acc_id);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    int oom = 0;
    out->acc_id = col_dup(st, 0, &oom);
    out->name = col_dup(st, 1, &oom);
    out->role = col_dup(st, 2, &oom);
    out->desc = col_dup(st, 3, &oom);
    out->url = col_dup(st, 4, &oom);
    if (oom) {
      store_node_clear(out);
      ret = oom_err(err, "reading node");
    } else {
      ret = 1;
    }
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading node");
  }
  q_done(s, Q_NODE_GET, st);
  return ret;
}

int store_node_each(store *s, int (*fn)(void *ctx, const store_node *n), void *ctx, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_NODE_EACH, err, "listing nodes");
  if (!st) return -1;
  int rc, ret = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_node v;
    node_view(st, &v);
    if (fn(ctx, &v)) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = io_err(s, err, "listing nodes");
  q_done(s, Q_NODE_EACH, st);
  return ret;
}

/* ---- meta ---- */

int store_meta_put(store *s, const char *key, const char *value, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_META_PUT, err, "storing meta");
  if (!st) return -1;
  bind_text(st, 1, key);
  bind_text(st, 2, value);
  return exec_q(s, Q_META_PUT, st, err, "storing meta");
}

int store_meta_get(store *s, const char *key, char **value, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_META_GET, err, "reading meta");
  if (!st) {
    *value = NULL;
    return -1;
  }
  bind_text(st, 1, key);
  return get_text(s, Q_META_GET, st, value, err, "reading meta");
}

/* ---- durability of the next commits ---- */

int store_set_durable(store *s, int durable, vn_err *err) {
  const char *sql = durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return io_err(s, err, "setting synchronous");
  return 0;
}

/* ---- outbox ---- */

int store_outbox_put(store *s, const char *id, const char *pid, int64_t nonce, const uint8_t *raw,
                     size_t len, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_OUT_PUT, err, "storing outbox item");
  if (!st) return -1;
  bind_text(st, 1, id);
  bind_text(st, 2, pid);
  sqlite3_bind_int64(st, 3, nonce);
  sqlite3_bind_blob(st, 4, raw ? (const void *)raw : "", (int)len, SQLITE_STATIC);
  int ret = sqlite3_step(st) == SQLITE_DONE ? 0 : io_err(s, err, "storing outbox item");
  q_done(s, Q_OUT_PUT, st);
  return ret;
}

int store_outbox_del(store *s, const char *id, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_OUT_DEL, err, "removing outbox item");
  if (!st) return -1;
  bind_text(st, 1, id);
  int ret = sqlite3_step(st) == SQLITE_DONE ? 0 : io_err(s, err, "removing outbox item");
  q_done(s, Q_OUT_DEL, st);
  return ret;
}

int store_outbox_each(store *s,
                      int (*fn)(void *ctx, const char *id, const char *pid, int64_t nonce,
                                const uint8_t *raw, size_t len),
                      void *ctx, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_OUT_EACH, err, "reading the outbox");
  if (!st) return -1;
  int rc, ret = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
           (size_t)sqlite3_column_bytes(st, 3)))
      break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = io_err(s, err, "reading the outbox");
  q_done(s, Q_OUT_EACH, st);
  return ret;
}

/* ---- integrity ---- */

int store_integrity_check(store *s, vn_err *err) {
  sqlite3_stmt *st = q_get(s, Q_INTEGRITY, err, "integrity check");
  if (!st) return -1;
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    const char *r = col_view(st, 0);
    /* The first row is "ok" or the first of up to 100 problems. */
    if (!r || strcmp(r, "ok") != 0)
      ret = vn_errh(err, 500, "store_corrupt", "store: integrity check failed: %s",
                    r ? r : "(no detail)");
  } else {
    ret = io_err(s, err, "integrity check");
  }
  q_done(s, Q_INTEGRITY, st);
  return ret;
}

/* ---- WAL checkpoints ---- */

int store_set_autocheckpoint(store *s, int pages, vn_err *err) {
  if (sqlite3_wal_autocheckpoint(s->db, pages) != SQLITE_OK)
    return io_err(s, err, "setting wal_autocheckpoint");
  return 0;
}

int store_wal_checkpoint(store *s, int truncate, int *wal_frames, vn_err *err) {
  int logf = 0, ckpt = 0;
  int mode = truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE;
  int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, mode, &logf, &ckpt);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) return io_err(s, err, "checkpointing the WAL");
  if (wal_frames) *wal_frames = logf;
  return 0;
}

/* ---- gateway lookups (POST /graphql, src/api/graphql.c) ----
 * A cold path: the statements are prepared per call, not cached, so this
 * block stands on its own. */

int store_item_received(store *s, const char *id, int64_t *received_ms, vn_err *err) {
  sqlite3_stmt *st = NULL;
  *received_ms = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT received_ms FROM items WHERE id = ?1", -1, &st, NULL) !=
      SQLITE_OK) {
    sqlite3_finalize(st);
    return io_err(s, err, "reading item time");
  }
  bind_text(st, 1, id);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    *received_ms = sqlite3_column_int64(st, 0);
    ret = 1;
  } else if (rc != SQLITE_DONE) {
    ret = io_err(s, err, "reading item time");
  }
  sqlite3_finalize(st);
  return ret;
}

int store_process_find(store *s, const char *owner, const char *name,
                       int (*fn)(void *ctx, const char *pid, int64_t spawn_ms), void *ctx,
                       vn_err *err) {
  /* "0x" addresses compare without case (EIP-55 is only a checksum);
   * LIKE is case-insensitive for ASCII, so '0x%' also takes "0X". */
  static const char sql[] =
      "SELECT pid, spawn_ms FROM processes"
      " WHERE (?1 IS NULL OR owner = ?1 OR (?1 LIKE '0x%' AND lower(owner) = lower(?1)))"
      " AND (?2 IS NULL OR name = ?2) ORDER BY spawn_ms, pid";
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return io_err(s, err, "finding processes");
  }
  bind_text(st, 1, owner);
  bind_text(st, 2, name);
  int rc, ret = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (fn(ctx, col_view(st, 0), sqlite3_column_int64(st, 1))) break;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = io_err(s, err, "finding processes");
  sqlite3_finalize(st);
  return ret;
}
