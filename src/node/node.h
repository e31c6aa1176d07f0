/* node.h - the scheduler: verify → dispatch by Type → assign a nonce →
 * append to the log (durable) → apply on the VM → store the result.
 *
 * Threads:
 *  - callers (HTTP handler threads) decode and verify items in parallel and
 *    call node_submit(), which blocks until the item's assignment is
 *    committed (or refused);
 *  - one sequencer thread takes every waiting submission at once, assigns
 *    nonces, signs hash-chained Assignment items and commits the whole batch
 *    in one durable transaction (group commit), then wakes the callers;
 *  - executor threads (sharded by process, so each process's messages are
 *    applied in nonce order) apply assigned messages on the VMs and store the
 *    results.
 * At start the node re-applies every assigned message whose result is
 * missing (a crash between commit and result), so results always catch up
 * with the log. */
#ifndef VN_NODE_H
#define VN_NODE_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"
#include "item/item.h"
#include "store/store.h"

typedef struct node node;

/* Opens (creating if needed) the data dir, loads or generates the node key,
 * opens the store, registers this node, loads mod/mod-*.json modules from the
 * data dir, and starts the threads. `c` is borrowed for the node's lifetime. */
node *node_open(const config *c, vn_err *err);
/* Stops accepting, drains the executors, closes everything. */
void node_close(node *n);

const char *node_address(const node *n); /* the scheduler id */
const config *node_config(const node *n);
const item_key *node_key(const node *n);

typedef struct node_submit_res {
  char id[ITEM_ID_LEN + 1];  /* the item id */
  char type[16];             /* Module | Process | Message */
  char pid[ITEM_ID_LEN + 1]; /* process it was assigned to ("" for modules) */
  int64_t nonce;             /* assigned nonce, -1 for modules */
  char *redirect_url;        /* set (malloc'd) when the item belongs to another node: 308 */
  char *redirect_acc;        /* that node's address (malloc'd) */
} node_submit_res;
void node_submit_res_clear(node_submit_res *r);

/* Submit a raw ANS-104 item. Returns 0 when the item is durably stored and
 * (for processes and messages) assigned; 1 when it belongs elsewhere (see
 * redirect_url); -1 with a specific error code otherwise. Thread-safe. */
int node_submit(node *n, const uint8_t *raw, size_t len, node_submit_res *res, vn_err *err);

/* Wait up to timeout_ms for the result of a message. 1 = *json set
 * (malloc'd), 0 = no result in time (err says whether the message is unknown
 * or still pending), -1 = error. */
int node_result_wait(node *n, const char *msgid, int timeout_ms, char **json, vn_err *err);

/* Evaluate a message read-only on the process's current state. `msg` is the
 * AO dry-run body {"Id","Owner","Target","Data","Tags":[…],"Anchor"}. */
int node_dryrun(node *n, const char *pid, const json_t *msg, json_t **result, vn_err *err);

/* The process's current state as its VM checkpoints it (a Lua process: the
 * worker's heap image, see docs/worker.md; echo: a small JSON), after every
 * message with a result. *data malloc'd; *nonce = the last nonce applied. */
int node_state(node *n, const char *pid, char **data, size_t *len, int64_t *nonce, vn_err *err);

/* A read connection from the node's pool; give it back with node_store_put. */
store *node_store_get(node *n, vn_err *err);
void node_store_put(node *n, store *s);

/* Id of the built-in Lua module (vmnode.lua.ao.v1) this node signed, "" if none. */
const char *node_default_module(const node *n);

/* The /info document. */
json_t *node_info(node *n);

/* Build the Meta JSON handed to VMs (PROTOCOL.md §2) for a message item. */
json_t *node_meta(const node *n, const char *pid, const item *msg, const char *from, int64_t nonce,
                  int64_t ts_ms);

/* ---- log verification (verify.c) ---- */

typedef struct vlog_report {
  int64_t checked;    /* assignments checked */
  int64_t bad_nonce;  /* first nonce that failed, -1 when all good */
  char reason[512];
} vlog_report;

/* Fetch assignment + assigned item at a nonce: 1 found (both owned by the
 * caller afterwards), 0 no such nonce (end of log), -1 error. */
typedef int (*vlog_fetch_fn)(void *ctx, int64_t nonce, item **assignment, item **message,
                             vn_err *err);

/* Check a process's log: nonces 0..N contiguous, every assignment signed by
 * `scheduler` (when NULL: by the signer of nonce 0's assignment), tags
 * Process/Message/Nonce right, the Hash-Chain linking each assignment to the
 * previous one, each message's signature valid and its id the one assigned.
 * Returns 0 when the log verifies, 1 when it does not (rep says where), -1
 * when it could not be read. */
int node_verify_log(const char *pid, const char *scheduler, vlog_fetch_fn fetch, void *ctx,
                    vlog_report *rep, vn_err *err);

/* Same, and the log must reach last_nonce (the nonce the scheduler reports
 * for the process): a log cut short is a failure, not a shorter success. */
int node_verify_log_upto(const char *pid, const char *scheduler, int64_t last_nonce,
                         vlog_fetch_fn fetch, void *ctx, vlog_report *rep, vn_err *err);

/* The same check reading the log from a store (the node's GET /verify-log,
 * or `vmnode verify-log --data-dir` offline): the log must reach the
 * process's recorded nonce; a missing or undecodable piece is a verdict (1),
 * not an error. -1 with "process_not_found" for an unknown process. */
int node_verify_log_store(store *st, const char *pid, const char *scheduler, vlog_report *rep,
                          vn_err *err);

/* Hash chain: H0 = SHA-256(pid bytes); H(n) = SHA-256(H(n-1) || id(n-1)). */
int node_chain_first(const char *pid, uint8_t out[32]);
void node_chain_next(const uint8_t prev[32], const char *prev_assignment_id, uint8_t out[32]);

#endif
