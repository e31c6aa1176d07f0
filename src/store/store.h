/* store.h - the node's durable state in one SQLite file (WAL mode).
 *
 * One `store` is one SQLite connection: use it from one thread at a time.
 * Open one per thread that needs it (they share the file; WAL lets readers
 * run beside the single writer). store_open() creates the file and runs the
 * schema migrations (the schema version lives in PRAGMA user_version).
 *
 * The log is the truth: `items` + `assignments` are the log; `results`,
 * `cache`, `checkpoints` can be rebuilt from it. All timestamps are unix ms.
 * Strings passed in are copied; strings and blobs returned are malloc'd and
 * owned by the caller unless said otherwise. */
#ifndef VN_STORE_H
#define VN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct store store;

#define STORE_SCHEMA_VERSION 2

/* durable: 1 = synchronous=FULL (fsync at each commit; used by the writer
 * that acknowledges messages), 0 = NORMAL (readers, result writers). */
store *store_open(const char *path, int durable, vn_err *err);
void store_close(store *s);

/* Transactions (BEGIN IMMEDIATE / COMMIT / ROLLBACK). Calls nest by count:
 * only the outermost begin/commit touch SQLite. */
int store_begin(store *s, vn_err *err);
int store_commit(store *s, vn_err *err);
void store_rollback(store *s);

/* ---- items (raw ANS-104 bytes, content-addressed by id) ---- */
typedef struct store_item_meta {
  const char *id;
  const char *type;      /* value of the Type tag, "" when absent */
  const char *owner;     /* signer address */
  const char *target;    /* base64url, "" when absent */
  int64_t received_ms;
} store_item_meta;
/* Inserts; returns 1 if inserted, 0 if the id was already there. */
int store_item_put(store *s, const store_item_meta *m, const uint8_t *raw, size_t len, vn_err *err);
/* 1 found (*raw malloc'd), 0 not found, -1 error. */
int store_item_get(store *s, const char *id, uint8_t **raw, size_t *len, vn_err *err);

/* ---- processes ---- */
typedef struct store_process {
  char *pid, *module, *owner, *name, *status, *error;
  int64_t nonce;        /* latest assigned nonce (0 after spawn) */
  uint8_t hash_chain[32]; /* Hash-Chain of the latest assignment */
  int64_t spawn_ms;
} store_process;
void store_process_clear(store_process *p); /* frees the strings */
int store_process_put(store *s, const store_process *p, vn_err *err); /* insert */
/* Update nonce + hash chain after an assignment. */
int store_process_advance(store *s, const char *pid, int64_t nonce, const uint8_t hash_chain[32], vn_err *err);
int store_process_set_status(store *s, const char *pid, const char *status, const char *error, vn_err *err);
/* 1 found, 0 not found, -1 error. */
int store_process_get(store *s, const char *pid, store_process *out, vn_err *err);
/* Calls fn for every process (ordered by spawn time); stops when fn returns non-zero. */
int store_process_each(store *s, int (*fn)(void *ctx, const store_process *p), void *ctx, vn_err *err);
int64_t store_process_count(store *s);

/* ---- assignments (the ordered log of each process) ---- */
typedef struct store_assignment {
  char *pid;
  int64_t nonce;
  char *message_id;      /* the assigned item (the spawn at nonce 0) */
  char *assignment_id;   /* id of the signed Assignment item */
  int64_t timestamp_ms;
  uint8_t *raw;          /* the signed Assignment item, binary */
  size_t raw_len;
} store_assignment;
void store_assignment_clear(store_assignment *a);
/* Fails with "duplicate_message" if message_id is already assigned and
 * "nonce_taken" if (pid, nonce) exists. */
int store_assignment_put(store *s, const store_assignment *a, vn_err *err);
int store_assignment_by_nonce(store *s, const char *pid, int64_t nonce, store_assignment *out, vn_err *err);
int store_assignment_by_message(store *s, const char *message_id, store_assignment *out, vn_err *err);
/* 1 if message_id is assigned already, 0 if not, -1 error. */
int store_message_assigned(store *s, const char *message_id, vn_err *err);
/* Iterate a process's log in nonce order from `from` (inclusive). */
int store_assignment_each(store *s, const char *pid, int64_t from,
                          int (*fn)(void *ctx, const store_assignment *a), void *ctx, vn_err *err);

/* ---- results (JSON text, one per assigned nonce) ---- */
int store_result_put(store *s, const char *pid, int64_t nonce, const char *message_id,
                     int64_t timestamp_ms, const char *json, vn_err *err); /* upsert */
/* 1 found (*json malloc'd), 0 not yet, -1 error. */
int store_result_get(store *s, const char *message_id, char **json, vn_err *err);
int store_result_by_nonce(store *s, const char *pid, int64_t nonce, char **json, vn_err *err);
/* Highest nonce with a stored result, -1 when none. */
int64_t store_result_last_nonce(store *s, const char *pid, vn_err *err);
/* Page through results: nonces in (after, before) exclusive, ascending when
 * asc, at most limit rows; fn gets nonce, timestamp and JSON. Pass after=-1 /
 * before=INT64_MAX for no bound. Returns the row count, -1 on error. */
int store_result_page(store *s, const char *pid, int64_t after, int64_t before, int asc, int limit,
                      int (*fn)(void *ctx, int64_t nonce, int64_t ts, const char *json), void *ctx,
                      vn_err *err);

/* ---- per-process key/value cache written by Result.Cache ---- */
int store_cache_put(store *s, const char *pid, const char *key, const char *value, vn_err *err);
int store_cache_get(store *s, const char *pid, const char *key, char **value, vn_err *err); /* 1/0/-1 */

/* ---- received sequences (From-Process ordering, per pid and sender) ---- */
int store_seq_get(store *s, const char *pid, const char *from, int64_t *seq, vn_err *err); /* 1/0/-1 */
int store_seq_put(store *s, const char *pid, const char *from, int64_t seq, vn_err *err);

/* ---- modules ---- */
int store_module_put(store *s, const char *id, const char *format, const uint8_t *raw, size_t len, vn_err *err);
/* 1/0/-1; raw and len may be NULL when only the format is wanted. */
int store_module_get(store *s, const char *id, char **format, uint8_t **raw, size_t *len, vn_err *err);
int store_module_each(store *s, int (*fn)(void *ctx, const char *id, const char *format), void *ctx, vn_err *err);

/* ---- checkpoints (image files live under the data dir; rows point at them) ---- */
int store_checkpoint_put(store *s, const char *pid, int64_t nonce, const char *item_id,
                         const char *image_hash, vn_err *err);
/* Newest checkpoint at or below max_nonce: 1 found, 0 none, -1 error. */
int store_checkpoint_latest(store *s, const char *pid, int64_t max_nonce, int64_t *nonce,
                            char **item_id, char **image_hash, vn_err *err);

/* Switch a connection's commits between durable (fsync, synchronous=FULL)
 * and not (NORMAL). Outside a transaction only. */
int store_set_durable(store *s, int durable, vn_err *err);

/* ---- outbox: signed items emitted by processes, not yet delivered ---- */
int store_outbox_put(store *s, const char *id, const char *pid, int64_t nonce, const uint8_t *raw,
                     size_t len, vn_err *err); /* an id already there is kept */
int store_outbox_del(store *s, const char *id, vn_err *err);
/* In the order they were put; fn's pointers live for the call only. */
int store_outbox_each(store *s,
                      int (*fn)(void *ctx, const char *id, const char *pid, int64_t nonce,
                                const uint8_t *raw, size_t len),
                      void *ctx, vn_err *err);

/* ---- node registry (self and known peers) ---- */
typedef struct store_node {
  char *acc_id, *name, *role, *desc, *url;
} store_node;
void store_node_clear(store_node *n);
int store_node_put(store *s, const store_node *n, vn_err *err); /* upsert */
int store_node_get(store *s, const char *acc_id, store_node *out, vn_err *err); /* 1/0/-1 */
int store_node_each(store *s, int (*fn)(void *ctx, const store_node *n), void *ctx, vn_err *err);

/* ---- small key/value of the node itself (e.g. "default_module") ---- */
int store_meta_put(store *s, const char *key, const char *value, vn_err *err);
int store_meta_get(store *s, const char *key, char **value, vn_err *err); /* 1/0/-1 */

/* WAL checkpoints. SQLite normally copies the WAL back into the database
 * inside whichever commit crosses wal_autocheckpoint pages, which puts that
 * copy on the acknowledge path. The node turns that off (pages = 0) on its
 * writers and calls store_wal_checkpoint (PASSIVE: never blocks writers)
 * from a background thread instead: PASSIVE (truncate = 0) never blocks
 * writers but cannot restart a WAL that is always being appended to;
 * TRUNCATE (truncate = 1) waits for the writer's current transaction, holds
 * new ones off while it copies the rest, and truncates the file. *wal_frames
 * (may be NULL) gets the WAL's size in frames before the call's effect. */
int store_set_autocheckpoint(store *s, int pages, vn_err *err);
int store_wal_checkpoint(store *s, int truncate, int *wal_frames, vn_err *err);

/* PRAGMA integrity_check: 0 when "ok". */
int store_integrity_check(store *s, vn_err *err);

/* ---- gateway lookups (POST /graphql) ---- */
/* When the node stored item `id` (unix ms): 1 found, 0 not an item here, -1 error. */
int store_item_received(store *s, const char *id, int64_t *received_ms, vn_err *err);
/* Processes spawned by `owner` (an address; NULL = anyone) whose Name tag is
 * `name` (NULL = any), oldest first: fn gets each pid (a view, valid during
 * the call) and its spawn time; it stops the walk by returning non-zero. */
int store_process_find(store *s, const char *owner, const char *name,
                       int (*fn)(void *ctx, const char *pid, int64_t spawn_ms), void *ctx,
                       vn_err *err);

#endif
