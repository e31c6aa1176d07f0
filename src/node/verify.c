/* verify.c - checking a process's log from the outside.
 *
 * A third party holding only the signed items can check that a scheduler's
 * log for a process is complete and in order: nonces run 0, 1, 2, … without
 * a gap; every Assignment is signed by the scheduler and names the process,
 * the message and the nonce; each carries a Hash-Chain value that commits to
 * every assignment before it (so nothing can be removed, inserted or
 * reordered without re-signing the rest); and every assigned message is a
 * validly signed item whose id is the one the assignment names. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "node/node.h"

int node_chain_first(const char *pid, uint8_t out[32]) {
  uint8_t raw[32];
  if (b64url_decode(pid, strlen(pid), raw, sizeof raw) != 32) {
    item_sha256((const uint8_t *)pid, strlen(pid), out);
    return -1;
  }
  item_sha256(raw, 32, out);
  return 0;
}

void node_chain_next(const uint8_t prev[32], const char *prev_assignment_id, uint8_t out[32]) {
  uint8_t buf[64];
  memcpy(buf, prev, 32);
  if (b64url_decode(prev_assignment_id, strlen(prev_assignment_id), buf + 32, 32) != 32)
    memset(buf + 32, 0, 32);
  item_sha256(buf, sizeof buf, out);
}

static int fail(vlog_report *rep, int64_t nonce, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(vlog_report *rep, int64_t nonce, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rep->bad_nonce = nonce;
  vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
  va_end(ap);
  return 1;
}

static int check_one(const char *pid, const char *sched, int64_t nonce, const item *a,
                     const item *m, const uint8_t chain[32], vlog_report *rep) {
  vn_err e;
  vn_err_clear(&e);
  if (item_verify(a, &e)) return fail(rep, nonce, "assignment signature invalid: %s", e.msg);
  char signer[ITEM_ADDR_MAX];
  item_owner_address(a, signer);
  if (strcmp(signer, sched))
    return fail(rep, nonce, "assignment signed by %s, not by the scheduler %s", signer, sched);
  const char *t = item_tag_get(a, "Type");
  if (!t || strcmp(t, "Assignment")) return fail(rep, nonce, "item is not an Assignment");
  const char *p = item_tag_get(a, "Process");
  if (!p || strcmp(p, pid)) return fail(rep, nonce, "assignment names process %s", p ? p : "(none)");
  const char *ns = item_tag_get(a, "Nonce");
  char want[32];
  snprintf(want, sizeof want, "%" PRId64, nonce);
  if (!ns || strcmp(ns, want))
    return fail(rep, nonce, "assignment carries Nonce %s, expected %s", ns ? ns : "(none)", want);
  const char *hc = item_tag_get(a, "Hash-Chain");
  char cb[64];
  b64url_encode(chain, 32, cb, sizeof cb);
  if (!hc || strcmp(hc, cb))
    return fail(rep, nonce, "Hash-Chain %s does not follow from the previous assignment (expected %s)",
                hc ? hc : "(none)", cb);
  const char *mid = item_tag_get(a, "Message");
  if (!mid || strcmp(mid, m->id))
    return fail(rep, nonce, "assignment names message %s but the log holds %s", mid ? mid : "(none)",
                m->id);
  if (item_verify(m, &e)) return fail(rep, nonce, "message %s: %s", m->id, e.msg);
  if (nonce == 0 && strcmp(m->id, pid))
    return fail(rep, nonce, "nonce 0 must be the spawn of %s, found %s", pid, m->id);
  return 0;
}

int node_verify_log(const char *pid, const char *scheduler, vlog_fetch_fn fetch, void *ctx,
                    vlog_report *rep, vn_err *err) {
  return node_verify_log_upto(pid, scheduler, -1, fetch, ctx, rep, err);
}

int node_verify_log_upto(const char *pid, const char *scheduler, int64_t last_nonce,
                         vlog_fetch_fn fetch, void *ctx, vlog_report *rep, vn_err *err) {
  memset(rep, 0, sizeof *rep);
  rep->bad_nonce = -1;
  uint8_t chain[32];
  node_chain_first(pid, chain);
  char sched[ITEM_ADDR_MAX] = "";
  if (scheduler) snprintf(sched, sizeof sched, "%s", scheduler);
  for (int64_t nonce = 0;; nonce++) {
    item *a = NULL, *m = NULL;
    int r = fetch(ctx, nonce, &a, &m, err);
    if (r < 0) return -1;
    if (r == 0) {
      if (nonce == 0) return fail(rep, 0, "the log of %s is empty (no spawn at nonce 0)", pid);
      if (last_nonce >= nonce)
        return fail(rep, nonce,
                    "the log stops at nonce %" PRId64 " but the scheduler reports nonce %" PRId64
                    " (assignments missing)",
                    nonce - 1, last_nonce);
      return 0;
    }
    if (!sched[0]) item_owner_address(a, sched);
    int bad = check_one(pid, sched, nonce, a, m, chain, rep);
    if (!bad) {
      node_chain_next(chain, a->id, chain);
      rep->checked++;
    }
    item_free(a);
    item_free(m);
    if (bad) return 1;
  }
}

/* ---- verifying straight from a store (the node's own route, or offline
 * from a data dir) ---- */

typedef struct store_vctx {
  store *st;
  const char *pid;
  int64_t broken_nonce; /* >= 0 when the log itself is missing a piece */
  char broken[512];
} store_vctx;

static int store_fetch(void *ctx, int64_t nonce, item **assignment, item **message, vn_err *err) {
  store_vctx *v = ctx;
  store_assignment as;
  memset(&as, 0, sizeof as);
  int rc = store_assignment_by_nonce(v->st, v->pid, nonce, &as, err);
  if (rc <= 0) return rc;
  uint8_t *raw = NULL;
  size_t len = 0;
  vn_err e;
  vn_err_clear(&e);
  item *asg = item_decode(as.raw, as.raw_len, &e);
  item *msg = NULL;
  if (!asg) {
    snprintf(v->broken, sizeof v->broken, "assignment at nonce %" PRId64 " does not decode: %.400s",
             nonce, e.msg);
  } else if ((rc = store_item_get(v->st, as.message_id, &raw, &len, &e)) <= 0) {
    if (rc < 0) {
      if (err) *err = e;
      item_free(asg);
      store_assignment_clear(&as);
      return -1;
    }
    snprintf(v->broken, sizeof v->broken, "message %.64s assigned at nonce %" PRId64 " is missing",
             as.message_id, nonce);
  } else if (!(msg = item_decode(raw, len, &e))) {
    snprintf(v->broken, sizeof v->broken, "message at nonce %" PRId64 " does not decode: %.400s",
             nonce, e.msg);
  }
  free(raw);
  store_assignment_clear(&as);
  if (!asg || !msg) {
    item_free(asg);
    v->broken_nonce = nonce;
    return vn_errf(err, "log_broken", "%s", v->broken);
  }
  *assignment = asg;
  *message = msg;
  return 1;
}

int node_verify_log_store(store *st, const char *pid, const char *scheduler, vlog_report *rep,
                          vn_err *err) {
  memset(rep, 0, sizeof *rep);
  rep->bad_nonce = -1;
  store_process p;
  memset(&p, 0, sizeof p);
  int rc = store_process_get(st, pid, &p, err);
  int64_t last = p.nonce;
  store_process_clear(&p);
  if (rc <= 0) {
    if (rc == 0) vn_errh(err, 404, "process_not_found", "no process %s in this store", pid);
    return -1;
  }
  store_vctx v = {.st = st, .pid = pid, .broken_nonce = -1};
  rc = node_verify_log_upto(pid, scheduler, last, store_fetch, &v, rep, err);
  if (rc < 0 && v.broken_nonce >= 0) { /* a hole in the log is a verdict, not a failure */
    rep->bad_nonce = v.broken_nonce;
    snprintf(rep->reason, sizeof rep->reason, "%s", v.broken);
    return 1;
  }
  return rc;
}
