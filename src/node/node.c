/* node.c - the scheduler. See node.h for the thread layout.
 *
 * Ownership of process state is split by thread so the hot paths take no
 * locks beyond a queue:
 *  - seq_proc (sequencer thread only): nonce, hash chain, last timestamp;
 *  - exec_proc (one executor thread only): the VM instance and the last
 *    nonce it has applied. */
#include "node/node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/enc.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "node/internal.h"
#include "vm/vm.h"

#ifndef VMNODE_VERSION
#define VMNODE_VERSION "0.1.0"
#endif

#define BATCH_MAX 1024      /* submissions per group commit */
#define EXEC_BATCH_MAX 256  /* results per executor transaction */
#define POOL_MAX 64         /* idle read connections kept */
#define NEXEC 2             /* executor threads (sharded by process) */

/* ---------------------------------------------------------------- utils */

int64_t node_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  while (*s) h = (h ^ (uint8_t)*s++) * 16777619u;
  return h;
}

static int mkdir_p(const char *path, vn_err *err) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return vn_errf(err, "bad_data_dir", "data dir path too long");
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0700) && errno != EEXIST)
      return vn_errf(err, "bad_data_dir", "cannot create %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0700) && errno != EEXIST)
    return vn_errf(err, "bad_data_dir", "cannot create %s: %s", buf, strerror(errno));
  return 0;
}

/* ------------------------------------------------------------- hash map */

/* A small open-addressing map from process id to a pointer. Used by one
 * thread each (the sequencer's and each executor's), so it has no lock. */
typedef struct pmap {
  char **keys;
  void **vals;
  size_t cap, n;
} pmap;

static void *pmap_get(pmap *m, const char *k) {
  if (!m->cap) return NULL;
  size_t i = hash_str(k) & (m->cap - 1);
  while (m->keys[i]) {
    if (strcmp(m->keys[i], k) == 0) return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}

static int pmap_put(pmap *m, const char *k, void *v) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t ncap = m->cap ? m->cap * 2 : 64;
    char **nk = calloc(ncap, sizeof *nk);
    void **nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
      free(nk);
      free(nv);
      return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i]) continue;
      size_t j = hash_str(m->keys[i]) & (ncap - 1);
      while (nk[j]) j = (j + 1) & (ncap - 1);
      nk[j] = m->keys[i];
      nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
  }
  size_t i = hash_str(k) & (m->cap - 1);
  while (m->keys[i]) {
    if (strcmp(m->keys[i], k) == 0) {
      m->vals[i] = v;
      return 0;
    }
    i = (i + 1) & (m->cap - 1);
  }
  m->keys[i] = strdup(k);
  m->vals[i] = v;
  m->n++;
  return 0;
}

/* Remove k (freeing its value with fv when not NULL). Backward-shift
 * deletion keeps the probe sequences intact without tombstones. */
static void pmap_del(pmap *m, const char *k, void (*fv)(void *)) {
  if (!m->cap) return;
  size_t mask = m->cap - 1, i = hash_str(k) & mask;
  while (m->keys[i] && strcmp(m->keys[i], k)) i = (i + 1) & mask;
  if (!m->keys[i]) return;
  free(m->keys[i]);
  if (fv) fv(m->vals[i]);
  m->keys[i] = NULL;
  m->vals[i] = NULL;
  m->n--;
  for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
    size_t home = hash_str(m->keys[j]) & mask;
    /* Move j back to i when its home is not in (i, j] (cyclically). */
    int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      m->keys[j] = NULL;
      m->vals[j] = NULL;
      i = j;
    }
  }
}

static void pmap_free(pmap *m, void (*fv)(void *)) {
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    free(m->keys[i]);
    if (fv) fv(m->vals[i]);
  }
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* -------------------------------------------------------------- types */

typedef struct seq_proc {
  char pid[ITEM_ID_LEN + 1];
  int dirty;         /* advanced in the current batch: written once at its end */
  int64_t nonce;     /* latest assigned */
  uint8_t chain[32]; /* Hash-Chain the next assignment carries */
  int64_t last_ts;
} seq_proc;

enum sub_kind { SUB_NONE, SUB_MODULE, SUB_PROCESS, SUB_MESSAGE };

typedef struct submission {
  item *it;
  /* decided by the sequencer, written by the writer */
  enum sub_kind kind;
  uint8_t *araw; /* the signed Assignment, binary */
  size_t alen;
  char aid[ITEM_ID_LEN + 1];
  int64_t spawn_ms;
  const char *seq_from; /* From-Process (points into it's tags) */
  int64_t seq_val;
  const uint8_t *raw;
  size_t len;
  char owner[ITEM_ADDR_MAX];
  int64_t ts; /* assignment timestamp */
  node_submit_res *res;
  vn_err err;
  int rc;
  int done;
  pthread_cond_t cv; /* signalled when done: no thundering herd on seq_mu */
  struct submission *next;
} submission;

/* A batch decided by the sequencer, on its way to the disk. */
typedef struct wbatch {
  submission *subs;
  uint64_t gen; /* failure generation it was decided in */
  struct {
    char pid[ITEM_ID_LEN + 1];
    int64_t nonce;
    uint8_t chain[32];
  } *adv; /* process rows to advance */
  size_t nadv;
  char **msg_keys, **mod_keys, **seq_keys; /* overlay entries it added */
  size_t nmsg_keys, nmod_keys, nseq_keys, cap_msg_keys, cap_mod_keys, cap_seq_keys;
  struct wbatch *next;
} wbatch;

enum job_kind { JOB_APPLY, JOB_CATCHUP, JOB_DRYRUN, JOB_STATE };

typedef struct job {
  enum job_kind kind;
  char pid[ITEM_ID_LEN + 1];
  int64_t nonce;
  int64_t ts;
  item *it;           /* owned; NULL = load from the store */
  char from[ITEM_ADDR_MAX + ITEM_ID_LEN];
  /* dry-run reply */
  json_t *result;
  /* state reply */
  char *state;
  size_t state_len;
  vn_err err;
  int rc, done;
  struct job *next;
} job;

typedef struct exec_proc {
  vm *v;
  int64_t applied; /* last nonce applied to v, -1 before the spawn */
  int64_t out_seq; /* Sequence of the last item the process emitted (-1: none) */
  int64_t used_ms; /* last time a job touched it (idle eviction) */
} exec_proc;

/* A signed item a process emitted, on its way to its target. */
typedef struct outbox_item {
  char id[ITEM_ID_LEN + 1];
  char pid[ITEM_ID_LEN + 1]; /* the sender */
  int64_t nonce;             /* of the message whose result emitted it */
  uint8_t *raw;
  size_t len;
  int tries;
  struct outbox_item *next;
} outbox_item;

static void outbox_free(outbox_item *o) {
  while (o) {
    outbox_item *nx = o->next;
    free(o->raw);
    free(o);
    o = nx;
  }
}

typedef struct executor {
  node *n;
  int idx;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *head, *tail;
  int stop;
  store *st;
  pmap procs; /* pid -> exec_proc */
  /* Results applied but not yet written: written together in one short
   * transaction, so the executor never holds SQLite's write lock while a
   * VM runs (the durable writer would wait for it). */
  struct pending_result {
    char pid[ITEM_ID_LEN + 1];
    char msgid[ITEM_ID_LEN + 1];
    int64_t nonce, ts;
    char *json;  /* the result */
    json_t *cache; /* Result.Cache, may be NULL */
    outbox_item *out; /* what it emitted, signed */
    int vm_failure;   /* the result records a dead worker: must not be lost */
  } *pend;
  size_t npend, cappend;
} executor;

struct node {
  const config *cfg;
  char *data_dir;
  item_key *key;
  char address[ITEM_ADDR_MAX];

  /* sequencer */
  pthread_t seq_th;
  pthread_mutex_t seq_mu;
  pthread_cond_t seq_cv;   /* work arrived */
  submission *q_head, *q_tail;
  int stopping;
  store *seq_st;      /* the sequencer's reads */
  pmap seq_procs;
  pmap pend_msgs, pend_mods, pend_seqs; /* decided, maybe not committed yet */
  uint64_t a_gen;     /* failure generation the sequencer's state belongs to */

  /* writer (stage B) */
  pthread_t w_th;
  store *seq_st2;     /* the one durable writer connection */
  pthread_mutex_t w_mu;
  pthread_cond_t w_cv, w_idle_cv;
  wbatch *w_head, *w_tail, *w_done;
  int w_busy, w_queued, w_stop;
  uint64_t w_fail_gen;
  /* Test hook (SQLite-style fault injection): when VN_TEST_FAIL_COMMIT_EVERY
   * is N > 0 in the environment, every Nth group commit is rolled back as if
   * the disk had failed. Only the e2e fault test sets it. */
  unsigned fault_every, fault_count;
  seq_proc **dirty; /* processes advanced in the current batch */
  size_t ndirty, capdirty;

  /* background WAL checkpointer */
  pthread_t ckpt_th;
  pthread_mutex_t ckpt_mu;
  pthread_cond_t ckpt_cv;
  int ckpt_stop;

  executor exec[NEXEC];

  /* outbox delivery (one thread, so a sender's items keep their order) */
  pthread_t out_th;
  pthread_mutex_t out_mu;
  pthread_cond_t out_cv;
  outbox_item *out_head, *out_tail;
  int out_stop;
  char default_module[ITEM_ID_LEN + 1];

  /* results: bumped after each executor commit */
  pthread_mutex_t res_mu;
  pthread_cond_t res_cv;
  uint64_t res_gen;

  /* read pool */
  pthread_mutex_t pool_mu;
  store *pool[POOL_MAX];
  int npool;
  char *db_path;
};

/* ---------------------------------------------------------- accessors */

const char *node_address(const node *n) {
  return n->address;
}
const config *node_config(const node *n) {
  return n->cfg;
}
const item_key *node_key(const node *n) {
  return n->key;
}

void node_submit_res_clear(node_submit_res *r) {
  free(r->redirect_url);
  free(r->redirect_acc);
  r->redirect_url = r->redirect_acc = NULL;
}

store *node_store_get(node *n, vn_err *err) {
  pthread_mutex_lock(&n->pool_mu);
  if (n->npool > 0) {
    store *s = n->pool[--n->npool];
    pthread_mutex_unlock(&n->pool_mu);
    return s;
  }
  pthread_mutex_unlock(&n->pool_mu);
  return store_open(n->db_path, 0, err);
}

void node_store_put(node *n, store *s) {
  if (!s) return;
  pthread_mutex_lock(&n->pool_mu);
  if (n->npool < POOL_MAX) {
    n->pool[n->npool++] = s;
    s = NULL;
  }
  pthread_mutex_unlock(&n->pool_mu);
  if (s) store_close(s);
}

/* ------------------------------------------------------------ meta/env */

/* Tags that never become Params (PROTOCOL.md §2). */
static const char *const NON_PARAMS[] = {
    "Data-Protocol", "Variant", "From-Process", "From-Module", "Type", "From",     "Owner",
    "Anchor",        "Target",  "Data",         "Tags",        "Read-Only", "Action", "Pushed-For",
    "Sequence",      NULL};

static int is_non_param(const char *name) {
  for (int i = 0; NON_PARAMS[i]; i++)
    if (strcmp(NON_PARAMS[i], name) == 0) return 1;
  return 0;
}

json_t *node_meta(const node *n, const char *pid, const item *msg, const char *from, int64_t nonce,
                  int64_t ts_ms) {
  json_t *params = json_object();
  for (size_t i = 0; i < msg->ntags; i++) {
    const item_tag *t = &msg->tags[i];
    if (!t->value_len || is_non_param(t->name)) continue;
    if (json_object_get(params, t->name)) continue; /* first occurrence wins */
    json_t *v = json_stringn(t->value, t->value_len);
    if (v) json_object_set_new(params, t->name, v);
  }
  json_t *d = json_stringn((const char *)msg->data, msg->data_len);
  if (d && msg->data_len) json_object_set_new(params, "Data", d);
  else json_decref(d);
  const char *seq = item_tag_get(msg, "Sequence");
  char *data = b64url_encode_alloc(msg->data, msg->data_len);
  const char *act = item_tag_get(msg, "Action");
  const char *fp = item_tag_get(msg, "From-Process");
  const char *pf = item_tag_get(msg, "Pushed-For");
  json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:s}", "Item-Id", msg->id, "Pid",
                        pid, "Acc-Id", n ? n->address : (from ? from : ""), "Action",
                        act ? act : "", "From-Process", fp ? fp : "", "Pushed-For",
                        pf ? pf : "", "Sequence", (json_int_t)(seq ? strtoll(seq, NULL, 10) : 0),
                        "Nonce", (json_int_t)nonce, "Timestamp", (json_int_t)ts_ms, "Params",
                        params, "Data", data ? data : "");
  free(data);
  return m;
}

static json_t *item_brief(const item *it) {
  char addr[ITEM_ADDR_MAX];
  item_owner_address(it, addr);
  json_t *tags = json_array();
  for (size_t i = 0; i < it->ntags; i++) {
    json_t *t = json_pack("{s:s%,s:s%}", "name", it->tags[i].name, it->tags[i].name_len, "value",
                          it->tags[i].value, it->tags[i].value_len);
    if (t) json_array_append_new(tags, t);
  }
  return json_pack("{s:s,s:s,s:o}", "Id", it->id, "Owner", addr, "Tags", tags);
}

/* ---------------------------------------------------------- sequencer */

static const char *strip0x(const char *s) {
  return (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? s + 2 : s;
}

static int same_address(const char *a, const char *b) {
  return strcasecmp(strip0x(a), strip0x(b)) == 0;
}

/* The sequencer (stage A) decides: checks, nonce, Hash-Chain, signed
 * Assignment. It writes nothing; what it decided goes to the writer (stage
 * B) batch by batch, which writes it in one durable transaction and only
 * then answers the callers. While the writer waits for its fsync the
 * sequencer already works on the next batch.
 *
 * Because the sequencer runs ahead of what is committed, it keeps overlays
 * of what it decided but the store may not show yet: message ids
 * (duplicates), modules, From-Process sequences. They are dropped when the
 * writer reports the batch committed. If a commit fails, the writer fails
 * that batch and every batch queued behind it (they were decided on top of
 * it), and the sequencer drops all its in-memory state and reloads it from
 * the committed log before deciding anything else. */

static seq_proc *seq_proc_load(node *n, const char *pid, vn_err *err) {
  seq_proc *p = pmap_get(&n->seq_procs, pid);
  if (p) return p;
  store_process sp;
  memset(&sp, 0, sizeof sp);
  int r = store_process_get(n->seq_st, pid, &sp, err);
  if (r <= 0) {
    if (r == 0) vn_errh(err, 404, "process_not_found", "process %s is not hosted on this node", pid);
    return NULL;
  }
  p = calloc(1, sizeof *p);
  snprintf(p->pid, sizeof p->pid, "%s", pid);
  p->nonce = sp.nonce;
  memcpy(p->chain, sp.hash_chain, 32);
  p->last_ts = sp.spawn_ms;
  store_process_clear(&sp);
  pmap_put(&n->seq_procs, pid, p);
  return p;
}

/* Build and sign the Assignment item for (pid, nonce). */
static item *make_assignment(node *n, const char *pid, const char *msgid, int64_t nonce,
                             int64_t ts, const uint8_t chain[32], vn_err *err) {
  item *a = item_new();
  char nb[32], tb[32], cb[64];
  snprintf(nb, sizeof nb, "%" PRId64, nonce);
  snprintf(tb, sizeof tb, "%" PRId64, ts);
  b64url_encode(chain, 32, cb, sizeof cb);
  if (item_add_tag(a, "Data-Protocol", "hymx", err) || item_add_tag(a, "Variant", "v0.1.0", err) ||
      item_add_tag(a, "Type", "Assignment", err) || item_add_tag(a, "Process", pid, err) ||
      item_add_tag(a, "Message", msgid, err) || item_add_tag(a, "Nonce", nb, err) ||
      item_add_tag(a, "Timestamp", tb, err) || item_add_tag(a, "Epoch", "0", err) ||
      item_add_tag(a, "Hash-Chain", cb, err) || item_sign(a, n->key, err)) {
    item_free(a);
    return NULL;
  }
  return a;
}

/* Remember a key the current batch added to an overlay, to drop it once the
 * batch is committed. */
static void batch_note(char ***keys, size_t *nk, size_t *cap, const char *k) {
  if (*nk == *cap) {
    *cap = *cap ? 2 * *cap : 32;
    *keys = realloc(*keys, *cap * sizeof **keys);
  }
  (*keys)[(*nk)++] = strdup(k);
}

/* Decide the next assignment of `s` on process `p`. */
static int assign(node *n, wbatch *b, submission *s, const char *pid, seq_proc *p, int64_t nonce) {
  int64_t ts = node_now_ms();
  if (ts < p->last_ts) ts = p->last_ts; /* timestamps never go back within a process */
  item *a = make_assignment(n, pid, s->it->id, nonce, ts, p->chain, &s->err);
  if (!a) return -1;
  s->araw = item_encode(a, &s->alen, &s->err);
  if (!s->araw) {
    item_free(a);
    return -1;
  }
  snprintf(s->aid, sizeof s->aid, "%s", a->id);
  node_chain_next(p->chain, a->id, p->chain);
  item_free(a);
  if (!p->dirty) {
    p->dirty = 1;
    if (n->ndirty == n->capdirty) {
      n->capdirty = n->capdirty ? 2 * n->capdirty : 64;
      n->dirty = realloc(n->dirty, n->capdirty * sizeof *n->dirty);
    }
    n->dirty[n->ndirty++] = p;
  }
  p->nonce = nonce;
  p->last_ts = ts;
  s->res->nonce = nonce;
  s->ts = ts;
  snprintf(s->res->pid, sizeof s->res->pid, "%s", pid);
  pmap_put(&n->pend_msgs, s->it->id, (void *)1);
  batch_note(&b->msg_keys, &b->nmsg_keys, &b->cap_msg_keys, s->it->id);
  return 0;
}

/* 1 when message id is assigned (committed or decided), 0 if not, -1 error. */
static int seq_assigned(node *n, const char *id, vn_err *err) {
  if (pmap_get(&n->pend_msgs, id)) return 1;
  return store_message_assigned(n->seq_st, id, err);
}

static int seq_module(node *n, wbatch *b, submission *s) {
  const char *fmt = item_tag_get(s->it, "Module-Format");
  if (!fmt || !*fmt)
    return vn_errf(&s->err, "module_format_missing", "a Module item needs a Module-Format tag");
  s->kind = SUB_MODULE;
  s->res->nonce = -1;
  if (!pmap_get(&n->pend_mods, s->it->id)) {
    pmap_put(&n->pend_mods, s->it->id, strdup(fmt));
    batch_note(&b->mod_keys, &b->nmod_keys, &b->cap_mod_keys, s->it->id);
  }
  return 0;
}

/* The format of a module, from the overlay or the store: 1/0/-1. */
static int seq_module_format(node *n, const char *mod, char **fmt, vn_err *err) {
  const char *pf = pmap_get(&n->pend_mods, mod);
  if (pf) {
    *fmt = strdup(pf);
    return 1;
  }
  return store_module_get(n->seq_st, mod, fmt, NULL, NULL, err);
}

/* Is this item for another node? 1 = redirect filled, 0 = ours, -1 error. */
static int check_scheduler(node *n, submission *s) {
  const char *sched = item_tag_get(s->it, "Scheduler");
  if (!sched || !*sched)
    return vn_errf(&s->err, "scheduler_missing",
                   "a Process item needs a Scheduler tag (this node is %s)", n->address);
  if (strcmp(sched, n->address) == 0) return 0;
  store_node peer;
  memset(&peer, 0, sizeof peer);
  int r = store_node_get(n->seq_st, sched, &peer, &s->err);
  if (r < 0) return -1;
  if (r == 0 || !peer.url || !*peer.url) {
    store_node_clear(&peer);
    if (same_address(sched, n->address))
      return vn_errf(&s->err, "scheduler_mismatch",
                     "Scheduler %s differs from this node's address %s only in letter case; use "
                     "the exact (EIP-55) form",
                     sched, n->address);
    return vn_errf(&s->err, "scheduler_unknown",
                   "Scheduler %s is not this node (%s) nor a node it knows", sched, n->address);
  }
  s->res->redirect_url = strdup(peer.url);
  s->res->redirect_acc = strdup(peer.acc_id);
  store_node_clear(&peer);
  return 1;
}

static int seq_process(node *n, wbatch *b, submission *s) {
  int r = check_scheduler(n, s);
  if (r) return r;
  const char *mod = item_tag_get(s->it, "Module");
  if (!mod || !*mod) return vn_errf(&s->err, "module_missing", "a Process item needs a Module tag");
  char *fmt = NULL;
  r = seq_module_format(n, mod, &fmt, &s->err);
  if (r < 0) return -1;
  if (r == 0)
    return vn_errf(&s->err, "module_not_found",
                   "module %s is not known to this node: POST the Module item first", mod);
  if (!vm_find(fmt)) {
    vn_errf(&s->err, "module_format_unsupported",
            "module %s has format '%s', which this node cannot run yet (see GET /modules)", mod,
            fmt);
    free(fmt);
    return -1;
  }
  free(fmt);
  const char *pid = s->it->id;
  int dup = pmap_get(&n->seq_procs, pid) ? 1 : seq_assigned(n, pid, &s->err);
  if (dup < 0) return -1;
  if (dup) return vn_errf(&s->err, "duplicate_message", "process %s is already spawned", pid);
  s->kind = SUB_PROCESS;
  s->spawn_ms = node_now_ms();
  seq_proc *p = calloc(1, sizeof *p);
  snprintf(p->pid, sizeof p->pid, "%s", pid);
  p->nonce = -1;
  node_chain_first(pid, p->chain);
  p->last_ts = s->spawn_ms;
  pmap_put(&n->seq_procs, pid, p);
  return assign(n, b, s, pid, p, 0);
}

/* Is `signer` allowed to push messages on behalf of other processes?
 * This node and the nodes in its registry are. */
static int may_push(node *n, const char *signer) {
  if (same_address(signer, n->address)) return 1;
  store_node peer;
  memset(&peer, 0, sizeof peer);
  int r = store_node_get(n->seq_st, signer, &peer, NULL);
  store_node_clear(&peer);
  return r == 1;
}

static int seq_message(node *n, wbatch *b, submission *s) {
  if (!s->it->has_target)
    return vn_errf(&s->err, "target_missing", "a Message item needs a target (the process id)");
  char pid[ITEM_ID_LEN + 1];
  b64url_encode(s->it->target, 32, pid, sizeof pid);
  seq_proc *p = seq_proc_load(n, pid, &s->err);
  if (!p) return -1;
  int r = seq_assigned(n, s->it->id, &s->err);
  if (r < 0) return -1;
  if (r > 0)
    return vn_errf(&s->err, "duplicate_message", "message %s is already assigned", s->it->id);
  const char *fp = item_tag_get(s->it, "From-Process");
  if (fp && *fp) {
    if (!may_push(n, s->owner))
      return vn_errf(&s->err, "push_not_allowed",
                     "From-Process is only accepted from this node or a known peer, not %s",
                     s->owner);
    const char *seqs = item_tag_get(s->it, "Sequence");
    char *end = NULL;
    long long seq = seqs ? strtoll(seqs, &end, 10) : -1;
    if (!seqs || !*seqs || *end || seq < 0)
      return vn_errf(&s->err, "bad_sequence", "a pushed message needs a non-negative Sequence tag");
    char key[ITEM_ID_LEN + 2 + 1100];
    snprintf(key, sizeof key, "%s\x1f%s", pid, fp);
    int64_t last = -1;
    int64_t *pl = pmap_get(&n->pend_seqs, key);
    if (pl) {
      last = *pl;
      r = 1;
    } else {
      r = store_seq_get(n->seq_st, pid, fp, &last, &s->err);
      if (r < 0) return -1;
    }
    if (r == 1 && seq <= last)
      return vn_errf(&s->err, "sequence_not_increasing",
                     "Sequence %lld from %s is not above the last one seen (%" PRId64 ")", seq, fp,
                     last);
    if (!pl) {
      pl = malloc(sizeof *pl);
      pmap_put(&n->pend_seqs, key, pl);
      batch_note(&b->seq_keys, &b->nseq_keys, &b->cap_seq_keys, key);
    }
    *pl = seq;
    s->seq_from = fp;
    s->seq_val = seq;
  }
  s->kind = SUB_MESSAGE;
  return assign(n, b, s, pid, p, p->nonce + 1);
}

static int seq_one(node *n, wbatch *b, submission *s) {
  const char *type = item_tag_get(s->it, "Type");
  snprintf(s->res->type, sizeof s->res->type, "%s", type);
  snprintf(s->res->id, sizeof s->res->id, "%s", s->it->id);
  if (strcmp(type, "Module") == 0) return seq_module(n, b, s);
  if (strcmp(type, "Process") == 0) return seq_process(n, b, s);
  if (strcmp(type, "Message") == 0) return seq_message(n, b, s);
  return vn_errf(&s->err, "unsupported_type",
                 "items of Type=%s are not accepted by this node yet (Module, Process and Message "
                 "are)",
                 type);
}

static void exec_enqueue(node *n, job *j);

static void wbatch_free(wbatch *b) {
  for (size_t i = 0; i < b->nmsg_keys; i++) free(b->msg_keys[i]);
  for (size_t i = 0; i < b->nmod_keys; i++) free(b->mod_keys[i]);
  for (size_t i = 0; i < b->nseq_keys; i++) free(b->seq_keys[i]);
  free(b->msg_keys);
  free(b->mod_keys);
  free(b->seq_keys);
  free(b->adv);
  free(b);
}

/* Drop the overlay entries of committed batches (sequencer thread). */
static void seq_reap(node *n) {
  pthread_mutex_lock(&n->w_mu);
  wbatch *done = n->w_done;
  n->w_done = NULL;
  pthread_mutex_unlock(&n->w_mu);
  while (done) {
    wbatch *b = done;
    done = b->next;
    for (size_t i = 0; i < b->nmsg_keys; i++) pmap_del(&n->pend_msgs, b->msg_keys[i], NULL);
    for (size_t i = 0; i < b->nmod_keys; i++) pmap_del(&n->pend_mods, b->mod_keys[i], free);
    for (size_t i = 0; i < b->nseq_keys; i++) pmap_del(&n->pend_seqs, b->seq_keys[i], free);
    wbatch_free(b);
  }
}

/* After a failed commit: wait until the writer has nothing in flight, then
 * forget everything decided but not committed. */
static void seq_reset(node *n) {
  pthread_mutex_lock(&n->w_mu);
  while (n->w_head || n->w_busy) pthread_cond_wait(&n->w_idle_cv, &n->w_mu);
  n->a_gen = n->w_fail_gen;
  pthread_mutex_unlock(&n->w_mu);
  seq_reap(n);
  outbox_free(n->out_head);
  pmap_free(&n->seq_procs, free);
  pmap_free(&n->pend_msgs, NULL);
  pmap_free(&n->pend_mods, free);
  pmap_free(&n->pend_seqs, free);
  n->ndirty = 0;
}

/* Stage A: decide a batch and queue it for the writer. */
static void seq_batch(node *n, submission *subs) {
  pthread_mutex_lock(&n->w_mu);
  int failed = n->a_gen != n->w_fail_gen;
  pthread_mutex_unlock(&n->w_mu);
  if (failed) seq_reset(n);
  seq_reap(n);
  wbatch *b = calloc(1, sizeof *b);
  b->subs = subs;
  b->gen = n->a_gen;
  for (submission *s = subs; s; s = s->next) s->rc = seq_one(n, b, s);
  /* Each process advanced in this batch: its nonce and next chain value,
   * written once (not once per message). */
  b->adv = calloc(n->ndirty ? n->ndirty : 1, sizeof *b->adv);
  for (size_t i = 0; i < n->ndirty; i++) {
    seq_proc *p = n->dirty[i];
    p->dirty = 0;
    snprintf(b->adv[i].pid, sizeof b->adv[i].pid, "%s", p->pid);
    b->adv[i].nonce = p->nonce;
    memcpy(b->adv[i].chain, p->chain, 32);
  }
  b->nadv = n->ndirty;
  n->ndirty = 0;
  pthread_mutex_lock(&n->w_mu);
  /* Backpressure: a bounded number of batches decided ahead of the disk. */
  while (n->w_queued >= 8) pthread_cond_wait(&n->w_idle_cv, &n->w_mu);
  if (n->w_tail) n->w_tail->next = b;
  else n->w_head = b;
  n->w_tail = b;
  n->w_queued++;
  pthread_cond_signal(&n->w_cv);
  pthread_mutex_unlock(&n->w_mu);
}

static int put_item(node *n, submission *s, vn_err *err) {
  const char *type = item_tag_get(s->it, "Type");
  char target[ITEM_ID_LEN + 1] = "";
  if (s->it->has_target) b64url_encode(s->it->target, 32, target, sizeof target);
  store_item_meta m = {.id = s->it->id,
                       .type = type ? type : "",
                       .owner = s->owner,
                       .target = target,
                       .received_ms = node_now_ms()};
  return store_item_put(n->seq_st2, &m, s->raw, s->len, err) < 0 ? -1 : 0;
}

/* Stage B: write one decided submission inside the batch transaction. */
static int write_one(node *n, submission *s, vn_err *err) {
  store *st = n->seq_st2;
  if (put_item(n, s, err)) return -1;
  if (s->kind == SUB_MODULE)
    return store_module_put(st, s->it->id, item_tag_get(s->it, "Module-Format"), s->raw, s->len,
                            err);
  if (s->kind == SUB_PROCESS) {
    const char *name = item_tag_get(s->it, "Name");
    store_process sp = {.pid = s->it->id,
                        .module = (char *)item_tag_get(s->it, "Module"),
                        .owner = s->owner,
                        .name = (char *)(name ? name : ""),
                        .status = "running",
                        .error = "",
                        .nonce = 0,
                        .spawn_ms = s->spawn_ms};
    node_chain_first(s->it->id, sp.hash_chain);
    if (store_process_put(st, &sp, err)) return -1;
  }
  if (s->seq_from && store_seq_put(st, s->res->pid, s->seq_from, s->seq_val, err)) return -1;
  store_assignment sa = {.pid = s->res->pid,
                         .nonce = s->res->nonce,
                         .message_id = s->it->id,
                         .assignment_id = s->aid,
                         .timestamp_ms = s->ts,
                         .raw = s->araw,
                         .raw_len = s->alen};
  return store_assignment_put(st, &sa, err);
}

/* Stage B: write every batch queued so far in one durable transaction (a
 * second level of group commit: when the disk is the bottleneck, batches
 * queue up and share one fsync), then answer their callers. */
static void write_batches(node *n, wbatch *first) {
  uint64_t t0 = metrics_now_ns();
  vn_err berr;
  vn_err_clear(&berr);
  pthread_mutex_lock(&n->w_mu);
  /* The queue never mixes generations: after a failure the sequencer waits
   * for it to drain before deciding on the reloaded state. */
  int ok = first->gen == n->w_fail_gen;
  pthread_mutex_unlock(&n->w_mu);
  if (!ok) vn_errh(&berr, 503, "store_io", "an earlier commit failed; retry");
  if (ok && store_begin(n->seq_st2, &berr)) ok = 0;
  for (wbatch *b = first; b && ok; b = b->next) {
    for (submission *s = b->subs; s && ok; s = s->next)
      if (s->rc == 0 && write_one(n, s, &berr)) ok = 0;
    for (size_t i = 0; i < b->nadv && ok; i++)
      if (store_process_advance(n->seq_st2, b->adv[i].pid, b->adv[i].nonce, b->adv[i].chain,
                                &berr))
        ok = 0;
  }
  if (ok && n->fault_every && ++n->fault_count % n->fault_every == 0) {
    vn_errh(&berr, 503, "store_io", "injected commit failure (VN_TEST_FAIL_COMMIT_EVERY)");
    ok = 0;
  }
  if (ok && store_commit(n->seq_st2, &berr)) ok = 0;
  if (!ok) {
    store_rollback(n->seq_st2);
    pthread_mutex_lock(&n->w_mu);
    if (first->gen == n->w_fail_gen) n->w_fail_gen++; /* everything queued behind fails too */
    pthread_mutex_unlock(&n->w_mu);
    char qb[600];
    vn_log(VN_LOG_ERROR, "seq.commit_failed", "error=%s msg=%s", berr.code ? berr.code : "",
           log_quote(berr.msg, qb, sizeof qb));
  } else {
    atomic_fetch_add(&vn_metrics.commit_batches, 1);
    metrics_observe(&vn_metrics.commit_latency, metrics_now_ns() - t0);
  }
  for (wbatch *b = first; b; b = b->next) {
    /* Hand assigned items to the executors (they take ownership). */
    for (submission *s = b->subs; s; s = s->next) {
      free(s->araw);
      s->araw = NULL;
      if (!ok && s->rc >= 0) {
        s->rc = -1;
        s->err = berr;
        s->err.http = 503;
      }
      if (s->rc == 0 && s->res->nonce >= 0) {
        job *j = calloc(1, sizeof *j);
        j->kind = JOB_APPLY;
        snprintf(j->pid, sizeof j->pid, "%s", s->res->pid);
        j->nonce = s->res->nonce;
        j->ts = s->ts;
        j->it = s->it;
        s->it = NULL;
        atomic_fetch_add(&vn_metrics.assignments, 1);
        if (s->kind == SUB_PROCESS) {
          atomic_fetch_add(&vn_metrics.spawns, 1);
          atomic_fetch_add(&vn_metrics.processes, 1);
        }
        exec_enqueue(n, j);
      }
    }
    pthread_mutex_lock(&n->seq_mu);
    for (submission *s = b->subs, *nx; s; s = nx) {
      nx = s->next; /* s may be gone once done is seen */
      s->done = 1;
      pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&n->seq_mu);
    b->subs = NULL;
  }
}

static void *writer_main(void *arg) {
  node *n = arg;
  pthread_mutex_lock(&n->w_mu);
  for (;;) {
    while (!n->w_head && !n->w_stop) pthread_cond_wait(&n->w_cv, &n->w_mu);
    if (!n->w_head) break;
    wbatch *chain = n->w_head, *last = chain;
    int k = 1;
    while (last->next) {
      last = last->next;
      k++;
    }
    n->w_head = n->w_tail = NULL;
    n->w_busy = 1;
    pthread_mutex_unlock(&n->w_mu);
    write_batches(n, chain);
    pthread_mutex_lock(&n->w_mu);
    n->w_busy = 0;
    n->w_queued -= k;
    last->next = n->w_done;
    n->w_done = chain;
    pthread_cond_broadcast(&n->w_idle_cv);
  }
  pthread_mutex_unlock(&n->w_mu);
  return NULL;
}

static void *seq_main(void *arg) {
  node *n = arg;
  for (;;) {
    pthread_mutex_lock(&n->seq_mu);
    while (!n->q_head && !n->stopping) pthread_cond_wait(&n->seq_cv, &n->seq_mu);
    if (!n->q_head && n->stopping) {
      pthread_mutex_unlock(&n->seq_mu);
      break;
    }
    /* Take up to BATCH_MAX waiting submissions. */
    submission *batch = n->q_head, *last = batch;
    int k = 1;
    while (last->next && k < BATCH_MAX) {
      last = last->next;
      k++;
    }
    n->q_head = last->next;
    if (!n->q_head) n->q_tail = NULL;
    last->next = NULL;
    pthread_mutex_unlock(&n->seq_mu);
    seq_batch(n, batch);
  }
  return NULL;
}

/* Stateless checks, run on the caller's thread in parallel. */
static item *precheck(node *n, const uint8_t *raw, size_t len, char owner[ITEM_ADDR_MAX],
                      vn_err *err) {
  if (len > (size_t)n->cfg->max_item_size) {
    vn_errh(err, 413, "body_too_large", "item is %zu bytes; this node accepts at most %" PRId64,
            len, n->cfg->max_item_size);
    return NULL;
  }
  item *it = item_decode(raw, len, err);
  if (!it) return NULL;
  if (item_verify(it, err) || item_tags_unique(it, err)) goto bad;
  const char *dp = item_tag_get(it, "Data-Protocol");
  if (dp && strcmp(dp, "hymx") && strcmp(dp, "ao")) {
    vn_errf(err, "bad_data_protocol", "Data-Protocol must be 'hymx' or 'ao', not '%s'", dp);
    goto bad;
  }
  const char *type = item_tag_get(it, "Type");
  if (!type || !*type) {
    vn_errf(err, "type_missing", "the item has no Type tag (Module, Process or Message)");
    goto bad;
  }
  item_owner_address(it, owner);
  return it;
bad:
  item_free(it);
  return NULL;
}

/* Submit k items in this order (the sequencer takes them in queue order,
 * so a sender's Sequence numbers stay increasing) and wait for all. rcs[i]
 * as node_submit's return value, errs[i] its error. */
static void submit_many(node *n, size_t k, const uint8_t *const *raws, const size_t *lens,
                        node_submit_res *res, vn_err *errs, int *rcs) {
  uint64_t t0 = metrics_now_ns();
  submission *subs = calloc(k, sizeof *subs);
  size_t queued = 0;
  for (size_t i = 0; i < k; i++) {
    submission *s = &subs[i];
    memset(&res[i], 0, sizeof res[i]);
    res[i].nonce = -1;
    vn_err_clear(&errs[i]);
    s->it = precheck(n, raws[i], lens[i], s->owner, &errs[i]);
    rcs[i] = -1;
    if (!s->it) {
      atomic_fetch_add(&vn_metrics.items_rejected, 1);
      continue;
    }
    s->raw = raws[i];
    s->len = lens[i];
    s->res = &res[i];
    pthread_cond_init(&s->cv, NULL);
    queued++;
  }
  pthread_mutex_lock(&n->seq_mu);
  int stopping = n->stopping;
  for (size_t i = 0; i < k && !stopping; i++) {
    submission *s = &subs[i];
    if (!s->res) continue;
    if (n->q_tail) n->q_tail->next = s;
    else n->q_head = s;
    n->q_tail = s;
  }
  if (!stopping && queued) pthread_cond_signal(&n->seq_cv);
  for (size_t i = 0; i < k && !stopping; i++)
    while (subs[i].res && !subs[i].done) pthread_cond_wait(&subs[i].cv, &n->seq_mu);
  pthread_mutex_unlock(&n->seq_mu);
  for (size_t i = 0; i < k; i++) {
    submission *s = &subs[i];
    if (!s->res) continue; /* refused by precheck */
    pthread_cond_destroy(&s->cv);
    if (stopping) {
      item_free(s->it);
      vn_errh(&errs[i], 503, "shutting_down", "the node is shutting down");
      continue;
    }
    item_free(s->it); /* NULL when an executor took it */
    if (s->rc < 0) {
      errs[i] = s->err;
      atomic_fetch_add(&vn_metrics.items_rejected, 1);
      continue;
    }
    rcs[i] = s->rc;
    atomic_fetch_add(&vn_metrics.items_received, 1);
    metrics_observe(&vn_metrics.assign_latency, metrics_now_ns() - t0);
  }
  free(subs);
}

int node_submit(node *n, const uint8_t *raw, size_t len, node_submit_res *res, vn_err *err) {
  vn_err e;
  int rc;
  submit_many(n, 1, &raw, &len, res, &e, &rc);
  if (rc < 0 && err) *err = e;
  return rc;
}

/* ---------------------------------------------------------- executors */

static void exec_enqueue(node *n, job *j) {
  executor *e = &n->exec[hash_str(j->pid) % NEXEC];
  if (j->kind != JOB_DRYRUN && j->kind != JOB_STATE) atomic_fetch_add(&vn_metrics.queue_depth, 1);
  pthread_mutex_lock(&e->mu);
  if (e->tail) e->tail->next = j;
  else e->head = j;
  e->tail = j;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* Close a process's VM; its next message rebuilds it from the log. */
static void exec_vm_drop(exec_proc *ep) {
  if (!ep->v) return;
  ep->v->ops->close(ep->v);
  atomic_fetch_sub(&vn_metrics.vms_running, 1);
  ep->v = NULL;
  ep->applied = -1;
}

static void exec_proc_free(void *p) {
  exec_proc *ep = p;
  exec_vm_drop(ep);
  free(ep);
}

/* Load an item from the store by id. */
static item *load_item(store *st, const char *id, vn_err *err) {
  uint8_t *raw = NULL;
  size_t len = 0;
  int r = store_item_get(st, id, &raw, &len, err);
  if (r <= 0) {
    if (r == 0) vn_errf(err, "item_not_found", "item %s is missing from the store", id);
    return NULL;
  }
  item *it = item_decode(raw, len, err);
  free(raw);
  return it;
}

/* Spawn a fresh VM instance for a process. */
static vm *exec_spawn_vm(executor *e, const char *pid, vn_err *err) {
  store_process sp;
  memset(&sp, 0, sizeof sp);
  int r = store_process_get(e->st, pid, &sp, err);
  if (r <= 0) {
    if (r == 0) vn_errf(err, "process_not_found", "process %s not found", pid);
    return NULL;
  }
  vm *v = NULL;
  item *proc = load_item(e->st, pid, err);
  item *mod = proc ? load_item(e->st, sp.module, err) : NULL;
  const char *fmt = mod ? item_tag_get(mod, "Module-Format") : NULL;
  const vm_ops *ops = vm_find(fmt);
  if (mod && !ops) vn_errf(err, "module_format_unsupported", "no VM for format %s", fmt ? fmt : "");
  if (ops) {
    json_t *meta = node_meta(e->n, pid, proc, sp.owner, 0, sp.spawn_ms);
    json_t *env = json_pack("{s:o,s:o,s:o,s:i,s:i,s:{}}", "Meta", meta, "Process",
                            item_brief(proc), "Module", item_brief(mod), "Nonce", 0, "Sequence",
                            -1, "Received-Sequence");
    vm_spawn_args a = {.pid = pid, .process = proc, .module = mod, .owner = sp.owner, .env = env};
    if (ops->spawn(&a, &v, err)) v = NULL;
    json_decref(env);
  }
  item_free(proc);
  item_free(mod);
  store_process_clear(&sp);
  return v;
}

/* Bring up a fresh VM for a process (nothing applied yet). */
static int exec_vm_up(executor *e, const char *pid, exec_proc *ep, vn_err *err) {
  ep->v = exec_spawn_vm(e, pid, err);
  ep->applied = -1;
  ep->out_seq = -1;
  if (!ep->v) return -1;
  atomic_fetch_add(&vn_metrics.vms_running, 1);
  return 0;
}

/* Queue a result (and its Cache entries) for the next exec_flush. */
static void exec_pend(executor *e, const char *pid, const char *msgid, int64_t nonce, int64_t ts,
                      json_t *res, outbox_item *out) {
  if (e->npend == e->cappend) {
    e->cappend = e->cappend ? 2 * e->cappend : 64;
    e->pend = realloc(e->pend, e->cappend * sizeof *e->pend);
  }
  struct pending_result *r = &e->pend[e->npend++];
  snprintf(r->pid, sizeof r->pid, "%s", pid);
  snprintf(r->msgid, sizeof r->msgid, "%s", msgid);
  r->nonce = nonce;
  r->ts = ts;
  r->json = json_dumps(res, JSON_COMPACT);
  json_t *cache = json_object_get(res, "Cache");
  r->cache = json_object_size(cache) ? json_incref(cache) : NULL;
  r->out = out;
  const char *er = json_string_value(json_object_get(res, "Error"));
  r->vm_failure = er && !strncmp(er, "vm_failure:", 11);
}

/* Write the queued results in one (non-durable: they can be rebuilt from
 * the log) transaction and wake whoever waits for results. */
static void exec_flush(executor *e) {
  if (!e->npend) return;
  node *n = e->n;
  /* Results are rebuilt from the log, so they are written without fsync;
   * but a vm_failure result is the only record that its message had no
   * effect (replay skips it): once a client may have seen it, it must
   * survive a crash. Such batches are committed durably. */
  int durable = 0;
  for (size_t i = 0; i < e->npend; i++) durable |= e->pend[i].vm_failure;
  if (durable) store_set_durable(e->st, 1, NULL);
  int in_tx = store_begin(e->st, NULL) == 0;
  size_t written = 0;
  for (size_t i = 0; i < e->npend; i++) {
    struct pending_result *r = &e->pend[i];
    const char *k;
    json_t *v;
    json_object_foreach(r->cache, k, v) {
      char *val = json_is_string(v) ? strdup(json_string_value(v))
                                    : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      store_cache_put(e->st, r->pid, k, val, NULL);
      free(val);
    }
    vn_err err;
    vn_err_clear(&err);
    for (outbox_item *o = r->out; o; o = o->next)
      store_outbox_put(e->st, o->id, o->pid, o->nonce, o->raw, o->len, NULL);
    if (r->json && !store_result_put(e->st, r->pid, r->nonce, r->msgid, r->ts, r->json, &err))
      written++;
    else {
      char qb[600];
      vn_log(VN_LOG_ERROR, "exec.result_write", "pid=%s nonce=%" PRId64 " msg=%s", r->pid,
             r->nonce, log_quote(err.msg, qb, sizeof qb));
    }
    free(r->json);
    json_decref(r->cache);
  }
  int committed = 1;
  if (in_tx && store_commit(e->st, NULL)) {
    store_rollback(e->st);
    written = 0;
    committed = 0;
  }
  if (durable) store_set_durable(e->st, 0, NULL);
  /* Hand what the processes emitted to the delivery thread (in order). */
  outbox_item *oh = NULL, **link = &oh, *ot = NULL;
  for (size_t i = 0; i < e->npend; i++) {
    outbox_item *o = e->pend[i].out;
    e->pend[i].out = NULL;
    if (!committed) {
      outbox_free(o);
      continue;
    }
    *link = o;
    for (; o; o = o->next) ot = o;
    if (ot) link = &ot->next;
  }
  if (oh) {
    pthread_mutex_lock(&n->out_mu);
    if (n->out_tail) n->out_tail->next = oh;
    else n->out_head = oh;
    n->out_tail = ot;
    pthread_cond_signal(&n->out_cv);
    pthread_mutex_unlock(&n->out_mu);
  }
  e->npend = 0;
  atomic_fetch_add(&vn_metrics.results, written);
  pthread_mutex_lock(&n->res_mu);
  n->res_gen++;
  pthread_cond_broadcast(&n->res_cv);
  pthread_mutex_unlock(&n->res_mu);
}

/* ---------------------------------------------------------- the outbox */

/* Add `tags` (a Result's [{name, value}]) after what o already has; the
 * first tag of a name wins (hymx outbox rule). */
static int outbox_add_tags(item *o, json_t *tags, vn_err *err) {
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) {
    const char *name = json_string_value(json_object_get(t, "name"));
    json_t *jv = json_object_get(t, "value");
    const char *value = json_string_value(jv);
    char num[64];
    if (!value && json_is_integer(jv)) {
      snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(jv));
      value = num;
    }
    if (!name || !*name || !value || item_tag_find(o, name)) continue;
    if (item_add_tag(o, name, value, err)) return -1;
  }
  return 0;
}

static outbox_item *outbox_seal(node *n, item *o, const char *pid, int64_t nonce, vn_err *err) {
  outbox_item *ob = NULL;
  if (item_tags_unique(o, err) || item_sign(o, n->key, err)) return NULL;
  size_t len = 0;
  uint8_t *raw = item_encode(o, &len, err);
  if (!raw) return NULL;
  ob = calloc(1, sizeof *ob);
  snprintf(ob->id, sizeof ob->id, "%s", o->id);
  snprintf(ob->pid, sizeof ob->pid, "%s", pid);
  ob->nonce = nonce;
  ob->raw = raw;
  ob->len = len;
  return ob;
}

static void outbox_fail(const char *pid, int64_t nonce, const char *what, const vn_err *err) {
  char qb[600];
  /* A reply to a wallet (an Ethereum address) is not an error of ours. */
  int wallet = err->code && !strcmp(err->code, "bad_target");
  atomic_fetch_add(&vn_metrics.outbox_dropped, 1);
  vn_log(wallet ? VN_LOG_DEBUG : VN_LOG_WARN, "outbox.dropped", "pid=%s nonce=%" PRId64 " what=%s error=%s msg=%s", pid,
         nonce, what, err->code ? err->code : "", log_quote(err->msg, qb, sizeof qb));
}

/* Turn a Result's Messages and Spawns into items signed by the node (hymx
 * outbox rules: From-Process, Sequence, Pushed-For first, then the entry's
 * own tags); a spawn is followed by the Spawned message to its parent.
 * Sequence numbers come from ep->out_seq, so replaying the same results
 * numbers them the same way. Each entry gets its "Sequence" and item "Id"
 * in the result. Returns the list in delivery order. */
static outbox_item *exec_outbox(executor *e, const char *pid, exec_proc *ep, const item *in,
                                int64_t nonce, json_t *res) {
  node *n = e->n;
  const char *pf = item_tag_get(in, "Pushed-For");
  if (!pf || !*pf) pf = in->id;
  outbox_item *head = NULL, **tail = &head;
  size_t i;
  json_t *m;
  char seqs[32];
  json_array_foreach(json_object_get(res, "Messages"), i, m) {
    int64_t seq = ++ep->out_seq;
    json_object_set_new(m, "Sequence", json_integer(seq));
    vn_err err;
    vn_err_clear(&err);
    const char *target = json_string_value(json_object_get(m, "Target"));
    const char *anchor = json_string_value(json_object_get(m, "Anchor"));
    json_t *jd = json_object_get(m, "Data");
    char *dfree = NULL;
    const char *data = json_string_value(jd);
    if (!data && jd && !json_is_null(jd)) data = dfree = json_dumps(jd, JSON_COMPACT | JSON_ENCODE_ANY);
    item *o = item_new();
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    int bad = !target ? vn_errf(&err, "target_missing", "a message without a Target")
                      : item_set_target_b64(o, target, &err);
    if (!bad && anchor && strlen(anchor) == 32) item_set_anchor(o, (const uint8_t *)anchor);
    if (!bad)
      bad = item_add_tag(o, "From-Process", pid, &err) || item_add_tag(o, "Sequence", seqs, &err) ||
            item_add_tag(o, "Pushed-For", pf, &err) ||
            outbox_add_tags(o, json_object_get(m, "Tags"), &err);
    if (!bad && !item_tag_find(o, "Type")) bad = item_add_tag(o, "Type", "Message", &err);
    if (!bad && data) item_set_data(o, (const uint8_t *)data, strlen(data));
    outbox_item *ob = bad ? NULL : outbox_seal(n, o, pid, nonce, &err);
    if (ob) {
      json_object_set_new(m, "Id", json_string(ob->id));
      *tail = ob;
      tail = &ob->next;
    } else {
      outbox_fail(pid, nonce, "message", &err);
    }
    item_free(o);
    free(dfree);
  }
  json_array_foreach(json_object_get(res, "Spawns"), i, m) {
    int64_t seq = ++ep->out_seq, seq2 = ++ep->out_seq;
    json_object_set_new(m, "Sequence", json_integer(seq));
    vn_err err;
    vn_err_clear(&err);
    const char *anchor = json_string_value(json_object_get(m, "Anchor"));
    const char *data = json_string_value(json_object_get(m, "Data"));
    item *o = item_new();
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    if (anchor && strlen(anchor) == 32) item_set_anchor(o, (const uint8_t *)anchor);
    int bad = item_add_tag(o, "From-Process", pid, &err) ||
              item_add_tag(o, "Sequence", seqs, &err) || item_add_tag(o, "Pushed-For", pf, &err) ||
              outbox_add_tags(o, json_object_get(m, "Tags"), &err);
    if (!bad && !item_tag_find(o, "Type")) bad = item_add_tag(o, "Type", "Process", &err);
    if (!bad && !item_tag_find(o, "Scheduler")) bad = item_add_tag(o, "Scheduler", n->address, &err);
    if (!bad && data) item_set_data(o, (const uint8_t *)data, strlen(data));
    outbox_item *ob = bad ? NULL : outbox_seal(n, o, pid, nonce, &err);
    if (!ob) {
      outbox_fail(pid, nonce, "spawn", &err);
      item_free(o);
      continue;
    }
    json_object_set_new(m, "Id", json_string(ob->id));
    *tail = ob;
    tail = &ob->next;
    /* The parent hears about it (its Spawn(...).receive() waits for this). */
    const char *ref = item_tag_get(o, "Reference");
    item *r = item_new();
    snprintf(seqs, sizeof seqs, "%" PRId64, seq2);
    vn_err_clear(&err);
    bad = item_set_target_b64(r, pid, &err) || item_add_tag(r, "Data-Protocol", "ao", &err) ||
          item_add_tag(r, "Variant", "ao.TN.1", &err) || item_add_tag(r, "Type", "Message", &err) ||
          item_add_tag(r, "Action", "Spawned", &err) ||
          item_add_tag(r, "From-Process", pid, &err) || item_add_tag(r, "Sequence", seqs, &err) ||
          item_add_tag(r, "Pushed-For", pf, &err) || item_add_tag(r, "Process", ob->id, &err);
    if (!bad && ref)
      bad = item_add_tag(r, "Reference", ref, &err) || item_add_tag(r, "X-Reference", ref, &err);
    outbox_item *ob2 = bad ? NULL : outbox_seal(n, r, pid, nonce, &err);
    if (ob2) {
      json_object_set_new(m, "Process", json_string(ob->id));
      *tail = ob2;
      tail = &ob2->next;
    } else {
      outbox_fail(pid, nonce, "spawned", &err);
    }
    item_free(r);
    item_free(o);
  }
  return head;
}

/* What a replayed result emitted, for the Sequence count. */
static void exec_outbox_count(exec_proc *ep, const json_t *res) {
  ep->out_seq += (int64_t)json_array_size(json_object_get(res, "Messages"));
  ep->out_seq += 2 * (int64_t)json_array_size(json_object_get(res, "Spawns"));
}

static int exec_catch_up(executor *e, const char *pid, exec_proc *ep, int64_t upto, vn_err *err);

/* Apply assignment `nonce` of a process (item may be NULL: loaded from the
 * store). Stores the result when mode is VM_APPLY. */
static int exec_apply_one(executor *e, const char *pid, exec_proc *ep, int64_t nonce, item *it,
                          int64_t ts, vm_mode mode, vn_err *err) {
  /* The sequencer hands over the item and its timestamp; only catch-up and
   * replay read the log back from the store. */
  store_assignment sa;
  memset(&sa, 0, sizeof sa);
  if (!it || ts < 0) {
    int r = store_assignment_by_nonce(e->st, pid, nonce, &sa, err);
    if (r <= 0) {
      if (r == 0) vn_errf(err, "assignment_missing", "process %s has no nonce %" PRId64, pid, nonce);
      return -1;
    }
    ts = sa.timestamp_ms;
  }
  item *own = NULL;
  if (!it) it = own = load_item(e->st, sa.message_id, err);
  if (!it) {
    store_assignment_clear(&sa);
    return -1;
  }
  char from[ITEM_ADDR_MAX + ITEM_ID_LEN];
  const char *fp = item_tag_get(it, "From-Process");
  if (fp && *fp) snprintf(from, sizeof from, "%s", fp);
  else item_owner_address(it, from);
  json_t *meta = node_meta(e->n, pid, it, from, nonce, ts);
  vm_msg m = {.msg = it, .from = from, .meta = meta, .mode = mode};
  json_t *res = NULL;
  uint64_t t0 = metrics_now_ns();
  vn_err verr;
  vn_err_clear(&verr);
  int rc = ep->v->ops->apply(ep->v, &m, &res, &verr);
  if (rc && verr.code && !strcmp(verr.code, VM_ERR_GONE)) {
    /* Died while idle: not this message's doing. Rebuild, then try again. */
    char qb[600];
    vn_log(VN_LOG_WARN, "vm.gone", "pid=%s nonce=%" PRId64 " msg=%s", pid, nonce,
           log_quote(verr.msg, qb, sizeof qb));
    exec_vm_drop(ep);
    vn_err cerr;
    vn_err_clear(&cerr);
    int back;
    if (nonce == 0) { /* a fresh VM (the spawn): just take another */
      back = exec_vm_up(e, pid, ep, &cerr) == 0;
    } else {
      back = exec_catch_up(e, pid, ep, nonce - 1, &cerr) == 0 && ep->v;
    }
    if (back) {
      vn_err_clear(&verr);
      rc = ep->v->ops->apply(ep->v, &m, &res, &verr);
    } else {
      verr = cerr;
      if (!ep->v) {
        /* nothing to close below */
        metrics_observe(&vn_metrics.apply_latency, metrics_now_ns() - t0);
        atomic_fetch_add(&vn_metrics.vm_failures, 1);
        res = vm_result_new();
        char buf[700];
        snprintf(buf, sizeof buf, "vm_failure: %s", verr.msg);
        json_object_set_new(res, "Error", json_string(buf));
        goto record;
      }
    }
  }
  metrics_observe(&vn_metrics.apply_latency, metrics_now_ns() - t0);
  if (rc) {
    /* The VM is broken: drop it; the next message rebuilds it from the log. */
    atomic_fetch_add(&vn_metrics.vm_failures, 1);
    char qb[600];
    vn_log(VN_LOG_WARN, "vm.failure", "pid=%s nonce=%" PRId64 " error=%s msg=%s", pid, nonce,
           verr.code ? verr.code : "",
           log_quote(verr.msg, qb, sizeof qb));
    exec_vm_drop(ep);
    res = vm_result_new();
    char buf[600];
    snprintf(buf, sizeof buf, "vm_failure: %s", verr.msg);
    json_object_set_new(res, "Error", json_string(buf));
  } else {
    ep->applied = nonce;
  }
record:
  if (mode == VM_APPLY) {
    json_object_set_new(res, "Nonce", json_integer(nonce));
    json_object_set_new(res, "Timestamp", json_integer(ts));
    json_object_set_new(res, "Item-Id", json_string(it->id));
    const char *pf = item_tag_get(it, "Pushed-For");
    json_object_set_new(res, "From-Process", json_string(fp ? fp : ""));
    json_object_set_new(res, "Pushed-For", json_string(pf ? pf : ""));
    json_t *er = json_object_get(res, "Error");
    if (er && !json_is_null(er) && !(json_is_string(er) && !*json_string_value(er)))
      atomic_fetch_add(&vn_metrics.result_errors, 1);
    outbox_item *out = rc ? NULL : exec_outbox(e, pid, ep, it, nonce, res);
    exec_pend(e, pid, it->id, nonce, ts, res, out);
  } else if (mode == VM_REPLAY && !rc) {
    exec_outbox_count(ep, res);
  }
  json_decref(res);
  json_decref(meta);
  item_free(own);
  store_assignment_clear(&sa);
  return rc ? -1 : 0;
}

/* A message whose worker died (crash, timeout, seccomp) left the state as
 * it was before it: its result says "vm_failure: ...". */
static int result_was_vm_failure(executor *e, const char *pid, int64_t nonce) {
  char *json = NULL;
  if (store_result_by_nonce(e->st, pid, nonce, &json, NULL) != 1) return 0;
  int r = 0;
  json_t *j = json_loads(json, 0, NULL);
  const char *er = json_string_value(json_object_get(j, "Error"));
  if (er && !strncmp(er, "vm_failure:", 11)) r = 1;
  json_decref(j);
  free(json);
  return r;
}

/* Bring a process's VM up to (and including) nonce `upto`, replaying what
 * already has results and applying what does not. */
static int catch_up_once(executor *e, const char *pid, exec_proc *ep, int64_t upto, vn_err *err) {
  if (ep->applied < upto) exec_flush(e); /* the store must show what was applied */
  if (!ep->v && exec_vm_up(e, pid, ep, err)) return -1;
  if (ep->applied >= upto) return 0;
  int64_t have = store_result_last_nonce(e->st, pid, NULL);
  for (int64_t k = ep->applied + 1; k <= upto; k++) {
    vm_mode mode = k <= have ? VM_REPLAY : VM_APPLY;
    if (mode == VM_REPLAY && result_was_vm_failure(e, pid, k)) {
      ep->applied = k; /* it had no effect the first time: none now */
      continue;
    }
    exec_apply_one(e, pid, ep, k, NULL, -1, mode, err);
    if (!ep->v) return -1;
  }
  return 0;
}

/* Bring a process's VM up to (and including) nonce `upto`, replaying what
 * already has results and applying what does not. A worker that dies while
 * replaying (killed from outside, a stale pooled worker) is replaced and
 * the replay starts over, twice at most; a message that kills its worker
 * while being applied gets a vm_failure result and is skipped from then on. */
static int exec_catch_up(executor *e, const char *pid, exec_proc *ep, int64_t upto, vn_err *err) {
  for (int attempt = 0;; attempt++) {
    if (!catch_up_once(e, pid, ep, upto, err)) return 0;
    if (err && err->code) return -1; /* not a dead worker: say why */
    if (attempt == 2) {
      return vn_errf(err, "replay_failed",
                     "process %s could not be rebuilt from its log: its worker died three times "
                     "while replaying",
                     pid);
    }
  }
}

static exec_proc *exec_proc_get(executor *e, const char *pid) {
  exec_proc *ep = pmap_get(&e->procs, pid);
  if (!ep) {
    ep = calloc(1, sizeof *ep);
    ep->applied = -1;
    pmap_put(&e->procs, pid, ep);
  }
  ep->used_ms = node_now_ms();
  return ep;
}

static void exec_dryrun(executor *e, job *j) {
  exec_proc *ep = exec_proc_get(e, j->pid);
  int64_t have = store_result_last_nonce(e->st, j->pid, NULL);
  if (exec_catch_up(e, j->pid, ep, have, &j->err)) {
    j->rc = -1;
    return;
  }
  json_t *meta = node_meta(e->n, j->pid, j->it, j->from, ep->applied + 1, node_now_ms());
  vm_msg m = {.msg = j->it, .from = j->from, .meta = meta, .mode = VM_DRYRUN};
  j->rc = ep->v->ops->apply(ep->v, &m, &j->result, &j->err);
  json_decref(meta);
  if (j->rc) {
    /* Its state is not to be trusted any more (the dry-run's changes may
     * not have been rolled back): rebuild it on the next message. */
    exec_vm_drop(ep);
  }
}

static void exec_state(executor *e, job *j) {
  exec_proc *ep = exec_proc_get(e, j->pid);
  int64_t have = store_result_last_nonce(e->st, j->pid, NULL);
  if (exec_catch_up(e, j->pid, ep, have, &j->err)) {
    j->rc = -1;
    return;
  }
  if (!ep->v->ops->checkpoint) {
    j->rc = vn_errf(&j->err, "not_supported", "this VM cannot save its state");
    return;
  }
  j->nonce = ep->applied;
  j->rc = ep->v->ops->checkpoint(ep->v, &j->state, &j->state_len, &j->err);
}

static void exec_job(executor *e, job *j) {
  vn_err err;
  vn_err_clear(&err);
  if (j->kind == JOB_DRYRUN) {
    exec_dryrun(e, j);
    return;
  }
  if (j->kind == JOB_STATE) {
    exec_state(e, j);
    return;
  }
  exec_proc *ep = exec_proc_get(e, j->pid);
  if (ep->applied >= j->nonce) return; /* already done by a catch-up */
  int rc = 0;
  if (j->kind == JOB_CATCHUP) {
    rc = exec_catch_up(e, j->pid, ep, j->nonce, &err);
  } else {
    if (j->nonce > 0 || ep->v) rc = exec_catch_up(e, j->pid, ep, j->nonce - 1, &err);
    else rc = exec_vm_up(e, j->pid, ep, &err);
    if (!rc) rc = exec_apply_one(e, j->pid, ep, j->nonce, j->it, j->ts, VM_APPLY, &err);
  }
  if (rc && err.code) {
    char qb[600];
    vn_log(VN_LOG_ERROR, "exec.failed", "pid=%s nonce=%" PRId64 " error=%s msg=%s", j->pid,
           j->nonce, err.code, log_quote(err.msg, qb, sizeof qb));
    /* Record a result so that clients waiting on it are answered. */
    exec_flush(e);
    if (store_result_last_nonce(e->st, j->pid, NULL) < j->nonce && j->it) {
      json_t *res = vm_result_new();
      char buf[600];
      snprintf(buf, sizeof buf, "%s: %s", err.code, err.msg);
      json_object_set_new(res, "Error", json_string(buf));
      json_object_set_new(res, "Nonce", json_integer(j->nonce));
      json_object_set_new(res, "Item-Id", json_string(j->it->id));
      exec_pend(e, j->pid, j->it->id, j->nonce, node_now_ms(), res, NULL);
      json_decref(res);
    }
  }
}

/* Close VMs nobody used for vmIdleMs: a Lua VM is a worker process, and an
 * idle one is memory for nothing. The next message rebuilds it (replay of
 * the log; from a checkpoint once those exist). */
static void exec_evict_idle(executor *e) {
  int idle = e->n->cfg->vm_idle_ms;
  if (idle <= 0) return;
  int64_t now = node_now_ms();
  for (size_t i = 0; i < e->procs.cap; i++) {
    exec_proc *ep = e->procs.vals[i];
    if (!ep || !ep->v || now - ep->used_ms < idle) continue;
    vn_log(VN_LOG_DEBUG, "vm.evicted", "pid=%s idle_ms=%" PRId64, e->procs.keys[i],
           now - ep->used_ms);
    exec_vm_drop(ep);
    atomic_fetch_add(&vn_metrics.vms_evicted, 1);
  }
}

static void *exec_main(void *arg) {
  executor *e = arg;
  node *n = e->n;
  int64_t next_evict = node_now_ms() + 1000;
  for (;;) {
    pthread_mutex_lock(&e->mu);
    while (!e->head && !e->stop) {
      if (n->cfg->vm_idle_ms <= 0) {
        pthread_cond_wait(&e->cv, &e->mu);
        continue;
      }
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      if (pthread_cond_timedwait(&e->cv, &e->mu, &ts) == ETIMEDOUT) break;
    }
    if (node_now_ms() >= next_evict) {
      pthread_mutex_unlock(&e->mu);
      exec_evict_idle(e);
      next_evict = node_now_ms() + 1000;
      pthread_mutex_lock(&e->mu);
    }
    if (!e->head && !e->stop) {
      pthread_mutex_unlock(&e->mu);
      continue;
    }
    if (!e->head && e->stop) {
      pthread_mutex_unlock(&e->mu);
      break;
    }
    job *list = e->head;
    e->head = e->tail = NULL;
    pthread_mutex_unlock(&e->mu);

    /* Apply a run of jobs, writing their results every EXEC_BATCH_MAX and
     * at the end of the run. Dry-runs are answered at once. */
    while (list) {
      job *j = list;
      list = j->next;
      if (j->kind == JOB_DRYRUN || j->kind == JOB_STATE) {
        exec_flush(e);
        exec_job(e, j);
        pthread_mutex_lock(&n->res_mu);
        j->done = 1;
        pthread_cond_broadcast(&n->res_cv);
        pthread_mutex_unlock(&n->res_mu);
        continue;
      }
      exec_job(e, j);
      atomic_fetch_sub(&vn_metrics.queue_depth, 1);
      item_free(j->it);
      free(j);
      if (e->npend >= EXEC_BATCH_MAX) exec_flush(e);
    }
    exec_flush(e);
  }
  return NULL;
}

/* ------------------------------------------------------------- results */

int node_result_wait(node *n, const char *msgid, int timeout_ms, char **json, vn_err *err) {
  store *st = node_store_get(n, err);
  if (!st) return -1;
  int64_t deadline = node_now_ms() + timeout_ms;
  int64_t unknown_deadline = node_now_ms() + (timeout_ms < 1000 ? timeout_ms : 1000);
  int rc = 0;
  for (;;) {
    pthread_mutex_lock(&n->res_mu);
    uint64_t gen = n->res_gen;
    pthread_mutex_unlock(&n->res_mu);
    int r = store_result_get(st, msgid, json, err);
    if (r != 0) {
      rc = r;
      break;
    }
    int64_t now = node_now_ms();
    int assigned = store_message_assigned(st, msgid, err);
    if (assigned < 0) {
      rc = -1;
      break;
    }
    if (!assigned && now >= unknown_deadline) {
      vn_errh(err, 404, "message_not_found", "no message %s has been assigned on this node", msgid);
      break;
    }
    if (now >= deadline) {
      vn_errh(err, 504, "result_pending",
              "message %s is assigned but its result is not ready after %d ms", msgid, timeout_ms);
      break;
    }
    int64_t until = assigned ? deadline : unknown_deadline;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wait = until - now;
    if (wait > 200) wait = 200; /* re-check periodically */
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&n->res_mu);
    while (n->res_gen == gen) {
      if (pthread_cond_timedwait(&n->res_cv, &n->res_mu, &ts) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&n->res_mu);
  }
  node_store_put(n, st);
  return rc;
}

/* Turn an AO dry-run body into an unsigned item. */
static item *dryrun_item(const char *pid, const json_t *msg, char *from, size_t fromlen,
                         vn_err *err) {
  if (!json_is_object(msg)) {
    vn_errf(err, "bad_json", "dry-run body must be a JSON object");
    return NULL;
  }
  item *it = item_new();
  const char *id = json_string_value(json_object_get(msg, "Id"));
  const char *owner = json_string_value(json_object_get(msg, "Owner"));
  const char *data = json_string_value(json_object_get(msg, "Data"));
  snprintf(it->id, sizeof it->id, "%s", id && strlen(id) <= ITEM_ID_LEN ? id : "dry-run");
  snprintf(from, fromlen, "%s", owner ? owner : "");
  if (data) item_set_data(it, (const uint8_t *)data, strlen(data));
  item_set_target_b64(it, pid, NULL);
  json_t *tags = json_object_get(msg, "Tags");
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) {
    const char *name = json_string_value(json_object_get(t, "name"));
    const char *value = json_string_value(json_object_get(t, "value"));
    if (!name || !value) {
      vn_errf(err, "bad_tags", "dry-run tag %zu needs string name and value", i);
      item_free(it);
      return NULL;
    }
    if (item_add_tag(it, name, value, err)) {
      item_free(it);
      return NULL;
    }
  }
  const char *fp = item_tag_get(it, "From-Process");
  if (fp && *fp) snprintf(from, fromlen, "%s", fp);
  item_add_tag(it, "Read-Only", "true", NULL);
  return it;
}

/* 0 when the process is hosted here, else -1 (404 process_not_found). */
static int process_hosted(node *n, const char *pid, vn_err *err) {
  store *st = node_store_get(n, err);
  if (!st) return -1;
  store_process sp;
  memset(&sp, 0, sizeof sp);
  int r = store_process_get(st, pid, &sp, err);
  node_store_put(n, st);
  store_process_clear(&sp);
  if (r <= 0) {
    if (r == 0) vn_errh(err, 404, "process_not_found", "process %s is not hosted here", pid);
    return -1;
  }
  return 0;
}

/* Run a dry-run or state job on the process's executor and wait for it. */
static void job_run_sync(node *n, job *j) {
  exec_enqueue(n, j);
  pthread_mutex_lock(&n->res_mu);
  while (!j->done) pthread_cond_wait(&n->res_cv, &n->res_mu);
  pthread_mutex_unlock(&n->res_mu);
}

int node_dryrun(node *n, const char *pid, const json_t *msg, json_t **result, vn_err *err) {
  if (process_hosted(n, pid, err)) return -1;
  job *j = calloc(1, sizeof *j);
  j->kind = JOB_DRYRUN;
  snprintf(j->pid, sizeof j->pid, "%s", pid);
  j->it = dryrun_item(pid, msg, j->from, sizeof j->from, err);
  if (!j->it) {
    free(j);
    return -1;
  }
  job_run_sync(n, j);
  int rc = j->rc;
  if (rc) {
    if (err) *err = j->err;
  } else {
    *result = j->result;
  }
  item_free(j->it);
  free(j);
  return rc ? -1 : 0;
}

int node_state(node *n, const char *pid, char **data, size_t *len, int64_t *nonce, vn_err *err) {
  if (process_hosted(n, pid, err)) return -1;
  job *j = calloc(1, sizeof *j);
  j->kind = JOB_STATE;
  snprintf(j->pid, sizeof j->pid, "%s", pid);
  job_run_sync(n, j);
  int rc = j->rc;
  if (rc) {
    if (err) *err = j->err;
    free(j->state);
  } else {
    *data = j->state;
    *len = j->state_len;
    if (nonce) *nonce = j->nonce;
  }
  free(j);
  return rc ? -1 : 0;
}

/* ------------------------------------------------------ outbox delivery */

typedef struct out_ctx {
  outbox_item *head, **tail;
} out_ctx;

static int out_load_one(void *ctx, const char *id, const char *pid, int64_t nonce,
                        const uint8_t *raw, size_t len) {
  out_ctx *c = ctx;
  outbox_item *o = calloc(1, sizeof *o);
  snprintf(o->id, sizeof o->id, "%s", id);
  snprintf(o->pid, sizeof o->pid, "%s", pid);
  o->nonce = nonce;
  o->raw = malloc(len ? len : 1);
  memcpy(o->raw, raw, len);
  o->len = len;
  *c->tail = o;
  c->tail = &o->next;
  return 0;
}

/* Deliver one item that belongs to another node: POST it there. 0 when
 * that node took it (or already had it). */
static int out_remote(const char *url, const outbox_item *o, vn_err *err) {
  httpc_resp r;
  if (httpc_request("POST", url, "application/octet-stream", o->raw, o->len, &r, 10000, err))
    return -1;
  int ok = (r.status >= 200 && r.status < 300) || (r.body && strstr(r.body, "duplicate_message"));
  if (!ok)
    vn_errf(err, "remote_refused", "%s answered %ld: %.200s", url, r.status, r.body ? r.body : "");
  httpc_resp_free(&r);
  return ok ? 0 : -1;
}

/* Submits emitted items through the same scheduler as everything else, in
 * the order they were emitted, and forgets each once its target has it.
 * Transient failures (the disk, shutdown) are retried; an item that can
 * never be delivered (unknown target process) is logged and dropped. */
static void *out_main(void *arg) {
  node *n = arg;
  vn_err err;
  vn_err_clear(&err);
  store *st = store_open(n->db_path, 0, &err);
  if (!st) {
    char qb[600];
    vn_log(VN_LOG_ERROR, "outbox.store", "error=%s", log_quote(err.msg, qb, sizeof qb));
    return NULL;
  }
  for (;;) {
    pthread_mutex_lock(&n->out_mu);
    while (!n->out_head && !n->out_stop) pthread_cond_wait(&n->out_cv, &n->out_mu);
    if (n->out_stop) {
      pthread_mutex_unlock(&n->out_mu);
      break;
    }
    outbox_item *list = n->out_head;
    n->out_head = n->out_tail = NULL;
    pthread_mutex_unlock(&n->out_mu);

    size_t k = 0;
    for (outbox_item *o = list; o; o = o->next) k++;
    const uint8_t **raws = calloc(k, sizeof *raws);
    size_t *lens = calloc(k, sizeof *lens);
    node_submit_res *res = calloc(k, sizeof *res);
    vn_err *errs = calloc(k, sizeof *errs);
    int *rcs = calloc(k, sizeof *rcs);
    size_t i = 0;
    for (outbox_item *o = list; o; o = o->next, i++) {
      raws[i] = o->raw;
      lens[i] = o->len;
    }
    submit_many(n, k, raws, lens, res, errs, rcs);
    outbox_item *retry = NULL, *rlast = NULL;
    int in_tx = store_begin(st, NULL) == 0;
    i = 0;
    for (outbox_item *o = list, *nx; o; o = nx, i++) {
      nx = o->next;
      o->next = NULL;
      int done = 1;
      const char *code = errs[i].code ? errs[i].code : "";
      if (rcs[i] == 1 && res[i].redirect_url) {
        vn_err rerr;
        vn_err_clear(&rerr);
        if (out_remote(res[i].redirect_url, o, &rerr)) {
          done = o->tries++ >= 5;
          errs[i] = rerr;
          code = rerr.code ? rerr.code : "";
        } else {
          atomic_fetch_add(&vn_metrics.outbox_delivered, 1);
        }
      } else if (rcs[i] == 0 || !strcmp(code, "duplicate_message") ||
                 !strcmp(code, "sequence_not_increasing")) {
        if (rcs[i] == 0) atomic_fetch_add(&vn_metrics.outbox_delivered, 1);
        code = "";
      } else if (errs[i].http == 503 || !strcmp(code, "shutting_down")) {
        done = 0; /* the disk or the node: try again */
      }
      if (done && *code) {
        atomic_fetch_add(&vn_metrics.outbox_dropped, 1);
        char qb[600];
        /* Replies to wallets (no such process here) are expected. */
        int wallet = !strcmp(code, "process_not_found");
        vn_log(wallet ? VN_LOG_DEBUG : VN_LOG_WARN, "outbox.undeliverable", "pid=%s nonce=%" PRId64 " item=%s error=%s msg=%s",
               o->pid, o->nonce, o->id, code, log_quote(errs[i].msg, qb, sizeof qb));
      }
      node_submit_res_clear(&res[i]);
      if (done) {
        store_outbox_del(st, o->id, NULL);
        outbox_free(o);
      } else {
        if (rlast) rlast->next = o;
        else retry = o;
        rlast = o;
      }
    }
    if (in_tx && store_commit(st, NULL)) store_rollback(st);
    free(raws);
    free(lens);
    free(res);
    free(errs);
    free(rcs);
    if (retry) {
      /* Back off a little, then put them first again (order matters). */
      struct timespec ts = {0, 200 * 1000000};
      nanosleep(&ts, NULL);
      pthread_mutex_lock(&n->out_mu);
      rlast->next = n->out_head;
      if (!n->out_head) n->out_tail = rlast;
      n->out_head = retry;
      pthread_mutex_unlock(&n->out_mu);
    }
  }
  store_close(st);
  return NULL;
}

/* ---------------------------------------------------------------- info */

static void add_format(void *ctx, const char *format, const vm_ops *ops) {
  (void)ops;
  json_array_append_new(ctx, json_string(format));
}

json_t *node_info(node *n) {
  const config *c = n->cfg;
  store *st = node_store_get(n, NULL);
  int64_t count = st ? store_process_count(st) : 0;
  node_store_put(n, st);
  json_t *formats = json_array();
  vm_each_format(add_format, formats);
  const char *note = vm_lua_note();
  json_t *lua = json_pack("{s:s,s:s,s:s}", "Format", VM_LUA_FORMAT, "Runtime", vm_lua_runtime_hash(),
                          "Sandbox", !note ? "not started" : *note ? note : "complete");
  json_t *info = json_pack("{s:s,s:s,s:s,s:b,s:{s:s,s:s,s:s,s:s,s:s},s:I,s:o}", "Protocol", "hymx",
                   "Variant", "v0.1.0", "Node-Version", VMNODE_VERSION, "Join-Network",
                   c->join_network, "Node", "Acc-Id", n->address, "Name",
                   c->node_name ? c->node_name : "", "Role", "main", "Desc",
                   c->node_desc ? c->node_desc : "", "URL", config_base_url(c), "Vm-Count",
                   (json_int_t)count, "Formats", formats);
  json_object_set_new(info, "Default-Module", json_string(n->default_module));
  json_object_set_new(info, "Lua", lua);
  return info;
}

const char *node_default_module(const node *n) { return n->default_module; }

/* The built-in Lua module: signed by this node the first time it runs this
 * version of the AO library, so `spawn` works with no setup. */
static void ensure_default_module(node *n) {
  vn_err err;
  vn_err_clear(&err);
  char key[128];
  snprintf(key, sizeof key, "default_module:%s", vm_lua_runtime_hash());
  store *st = node_store_get(n, &err);
  if (!st) return;
  char *id = NULL;
  if (store_meta_get(st, key, &id, &err) == 1 && id && strlen(id) == ITEM_ID_LEN) {
    snprintf(n->default_module, sizeof n->default_module, "%s", id);
    free(id);
    node_store_put(n, st);
    return;
  }
  free(id);
  item *it = vm_lua_module_item(n->key, &err);
  size_t len = 0;
  uint8_t *raw = it ? item_encode(it, &len, &err) : NULL;
  node_submit_res res;
  memset(&res, 0, sizeof res);
  int rc = raw ? node_submit(n, raw, len, &res, &err) : -1;
  if (rc == 0 || (err.code && !strcmp(err.code, "duplicate_message"))) {
    snprintf(n->default_module, sizeof n->default_module, "%s", it->id);
    store_meta_put(st, key, it->id, NULL);
    store_meta_put(st, "default_module", it->id, NULL);
    vn_log(VN_LOG_INFO, "node.default_module", "id=%s format=%s", it->id, VM_LUA_FORMAT);
  } else {
    char qb[600];
    vn_log(VN_LOG_ERROR, "node.default_module", "error=%s msg=%s", err.code ? err.code : "",
           log_quote(err.msg, qb, sizeof qb));
  }
  node_submit_res_clear(&res);
  free(raw);
  item_free(it);
  node_store_put(n, st);
}

/* ------------------------------------------------------- WAL checkpoints */

/* Copies the WAL back into the database off the acknowledge path (the
 * writers have SQLite's automatic checkpoint turned off). */
static void *ckpt_main(void *arg) {
  node *n = arg;
  vn_err err;
  vn_err_clear(&err);
  store *st = store_open(n->db_path, 0, &err);
  if (!st) {
    char qb[600];
    vn_log(VN_LOG_ERROR, "store.checkpointer", "error=%s", log_quote(err.msg, qb, sizeof qb));
    return NULL;
  }
  pthread_mutex_lock(&n->ckpt_mu);
  while (!n->ckpt_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&n->ckpt_cv, &n->ckpt_mu, &ts);
    if (n->ckpt_stop) break;
    pthread_mutex_unlock(&n->ckpt_mu);
    /* Copy what we can without blocking anyone; once the WAL is past ~32 MiB
     * (8192 pages) restart it, briefly holding the writer off, so it does
     * not grow without bound under constant load. */
    int frames = 0;
    store_wal_checkpoint(st, 0, &frames, NULL);
    if (frames > 8192) store_wal_checkpoint(st, 1, NULL, NULL);
    pthread_mutex_lock(&n->ckpt_mu);
  }
  pthread_mutex_unlock(&n->ckpt_mu);
  store_wal_checkpoint(st, 1, NULL, NULL);
  store_close(st);
  return NULL;
}

/* ------------------------------------------------------------ start/stop */

static int load_key(node *n, vn_err *err) {
  const config *c = n->cfg;
  if (c->prv_key) n->key = item_key_from_hex(c->prv_key, err);
  else if (c->keyfile_path) n->key = item_key_from_jwk_file(c->keyfile_path, err);
  else {
    char path[4200];
    snprintf(path, sizeof path, "%s/node.key", n->data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
      char hex[128] = "";
      if (!fgets(hex, sizeof hex, f)) hex[0] = 0;
      fclose(f);
      hex[strcspn(hex, "\r\n ")] = 0;
      n->key = item_key_from_hex(hex, err);
      if (!n->key) vn_err_wrap(err, "reading %s", path);
    } else {
      n->key = item_key_generate(err);
      char hex[67];
      if (!n->key || item_key_to_hex(n->key, hex)) return -1;
      int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
      if (fd < 0) return vn_errf(err, "bad_data_dir", "cannot write %s: %s", path, strerror(errno));
      size_t hl = strlen(hex);
      int ok = write(fd, hex, hl) == (ssize_t)hl && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
      close(fd);
      if (!ok) return vn_errf(err, "bad_data_dir", "cannot write %s", path);
      vn_log(VN_LOG_INFO, "node.key_generated", "path=%s address=%s", path,
             item_key_address(n->key));
    }
  }
  if (!n->key) return -1;
  snprintf(n->address, sizeof n->address, "%s", item_key_address(n->key));
  return 0;
}

/* Load hymx-style module files (mod/mod-<id>.json) from a directory. */
static void load_module_dir(node *n, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (strncmp(de->d_name, "mod-", 4) || l < 9 || strcmp(de->d_name + l - 5, ".json")) continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    vn_err err;
    vn_err_clear(&err);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    item *it = j ? item_from_json(j, &err) : NULL;
    json_decref(j);
    uint8_t *raw = NULL;
    size_t len = 0;
    if (it && !item_verify(it, &err)) raw = item_encode(it, &len, &err);
    if (!raw) {
      char qb[600];
      vn_log(VN_LOG_WARN, "node.module_skipped", "path=%s error=%s", path,
             log_quote(j ? err.msg : je.text, qb, sizeof qb));
      item_free(it);
      continue;
    }
    node_submit_res res;
    if (node_submit(n, raw, len, &res, &err) == 0)
      vn_log(VN_LOG_INFO, "node.module_loaded", "path=%s id=%s format=%s", path, it->id,
             item_tag_get(it, "Module-Format"));
    else {
      char qb[600];
      vn_log(VN_LOG_WARN, "node.module_skipped", "path=%s error=%s msg=%s", path, err.code,
             log_quote(err.msg, qb, sizeof qb));
    }
    node_submit_res_clear(&res);
    free(raw);
    item_free(it);
  }
  closedir(d);
}

typedef struct recover_ctx {
  node *n;
  int64_t pending;
} recover_ctx;

static int recover_one(void *ctx, const store_process *p) {
  recover_ctx *rc = ctx;
  store *st = rc->n->exec[0].st;
  atomic_fetch_add(&vn_metrics.processes, 1);
  int64_t have = store_result_last_nonce(st, p->pid, NULL);
  if (have < p->nonce) {
    job *j = calloc(1, sizeof *j);
    j->kind = JOB_CATCHUP;
    snprintf(j->pid, sizeof j->pid, "%s", p->pid);
    j->nonce = p->nonce;
    rc->pending += p->nonce - have;
    exec_enqueue(rc->n, j);
  }
  return 0;
}

node *node_open(const config *c, vn_err *err) {
  vm_register_builtins();
  node *n = calloc(1, sizeof *n);
  n->cfg = c;
  n->data_dir = strdup(c->data_dir);
  const char *fe = getenv("VN_TEST_FAIL_COMMIT_EVERY");
  if (fe) n->fault_every = (unsigned)strtoul(fe, NULL, 10);
  pthread_mutex_init(&n->seq_mu, NULL);
  pthread_cond_init(&n->seq_cv, NULL);
  pthread_mutex_init(&n->res_mu, NULL);
  pthread_cond_init(&n->res_cv, NULL);
  pthread_mutex_init(&n->pool_mu, NULL);
  pthread_mutex_init(&n->ckpt_mu, NULL);
  pthread_mutex_init(&n->w_mu, NULL);
  pthread_cond_init(&n->w_cv, NULL);
  pthread_cond_init(&n->w_idle_cv, NULL);
  pthread_cond_init(&n->ckpt_cv, NULL);
  pthread_mutex_init(&n->out_mu, NULL);
  pthread_cond_init(&n->out_cv, NULL);
  if (mkdir_p(n->data_dir, err) || load_key(n, err)) goto fail;
  if (asprintf(&n->db_path, "%s/vmnode.db", n->data_dir) < 0) goto fail;
  n->seq_st2 = store_open(n->db_path, 1, err);
  if (!n->seq_st2 || store_set_autocheckpoint(n->seq_st2, 0, err)) goto fail;
  n->seq_st = store_open(n->db_path, 0, err);
  if (!n->seq_st) goto fail;
  for (int i = 0; i < NEXEC; i++) {
    executor *e = &n->exec[i];
    e->n = n;
    e->idx = i;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->st = store_open(n->db_path, 0, err);
    if (!e->st || store_set_autocheckpoint(e->st, 0, err)) goto fail;
  }

  /* Register this node and its configured peers. */
  store_node self = {.acc_id = n->address,
                     .name = c->node_name ? c->node_name : "",
                     .role = "main",
                     .desc = c->node_desc ? c->node_desc : "",
                     .url = (char *)config_base_url(c)};
  if (store_node_put(n->seq_st2, &self, err)) goto fail;
  for (size_t i = 0; i < c->npeers; i++) {
    store_node p = {.acc_id = c->peers[i].acc_id,
                    .name = c->peers[i].name ? c->peers[i].name : "",
                    .role = "peer",
                    .desc = "",
                    .url = c->peers[i].url};
    if (store_node_put(n->seq_st2, &p, err)) goto fail;
  }

  atomic_store(&vn_metrics.processes, 0);
  if (pthread_create(&n->ckpt_th, NULL, ckpt_main, n)) {
    vn_errf(err, "thread", "cannot start the checkpointer thread");
    goto fail;
  }
  if (pthread_create(&n->w_th, NULL, writer_main, n)) {
    vn_errf(err, "thread", "cannot start the writer thread");
    goto fail_threads;
  }
  if (pthread_create(&n->seq_th, NULL, seq_main, n)) {
    vn_errf(err, "thread", "cannot start the sequencer thread");
    goto fail_threads;
  }
  /* Queue catch-up work before the executors start so it runs first. */
  recover_ctx rc = {.n = n};
  if (store_process_each(n->exec[0].st, recover_one, &rc, err)) goto fail_threads;
  if (rc.pending)
    vn_log(VN_LOG_INFO, "node.recover", "results_to_rebuild=%" PRId64, rc.pending);
  for (int i = 0; i < NEXEC; i++) {
    if (pthread_create(&n->exec[i].th, NULL, exec_main, &n->exec[i])) {
      vn_errf(err, "thread", "cannot start an executor thread");
      goto fail_threads;
    }
  }
  /* Items emitted before a stop and not delivered yet go first. */
  out_ctx oc = {.head = NULL, .tail = &oc.head};
  store_outbox_each(n->exec[0].st, out_load_one, &oc, NULL);
  if (oc.head) {
    n->out_head = oc.head;
    n->out_tail = (outbox_item *)oc.head;
    while (n->out_tail->next) n->out_tail = n->out_tail->next;
  }
  if (pthread_create(&n->out_th, NULL, out_main, n)) {
    vn_errf(err, "thread", "cannot start the outbox thread");
    goto fail_threads;
  }
  char moddir[4200];
  snprintf(moddir, sizeof moddir, "%s/mod", n->data_dir);
  load_module_dir(n, moddir);
  load_module_dir(n, "mod");
  ensure_default_module(n);
  vn_log(VN_LOG_INFO, "node.open", "address=%s data_dir=%s processes=%lld", n->address, n->data_dir,
         (long long)atomic_load(&vn_metrics.processes));
  return n;

fail_threads:
  node_close(n);
  return NULL;
fail:
  /* Threads were not started: release by hand. */
  for (int i = 0; i < NEXEC; i++)
    if (n->exec[i].st) store_close(n->exec[i].st);
  if (n->seq_st) store_close(n->seq_st);
  if (n->seq_st2) store_close(n->seq_st2);
  item_key_free(n->key);
  free(n->db_path);
  free(n->data_dir);
  free(n);
  return NULL;
}

void node_close(node *n) {
  if (!n) return;
  /* The outbox thread first: what it has not delivered stays in the store. */
  pthread_mutex_lock(&n->out_mu);
  n->out_stop = 1;
  pthread_cond_signal(&n->out_cv);
  pthread_mutex_unlock(&n->out_mu);
  if (n->out_th) pthread_join(n->out_th, NULL);
  pthread_mutex_lock(&n->seq_mu);
  n->stopping = 1;
  pthread_cond_broadcast(&n->seq_cv);
  pthread_mutex_unlock(&n->seq_mu);
  if (n->seq_th) pthread_join(n->seq_th, NULL);
  pthread_mutex_lock(&n->w_mu);
  n->w_stop = 1;
  pthread_cond_signal(&n->w_cv);
  pthread_mutex_unlock(&n->w_mu);
  if (n->w_th) pthread_join(n->w_th, NULL);
  seq_reap(n);
  for (int i = 0; i < NEXEC; i++) {
    executor *e = &n->exec[i];
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->th) pthread_join(e->th, NULL);
    /* Jobs left (only when threads never started). */
    for (job *j = e->head; j;) {
      job *nx = j->next;
      item_free(j->it);
      free(j);
      j = nx;
    }
    pmap_free(&e->procs, exec_proc_free);
    free(e->pend);
    if (e->st) store_close(e->st);
  }
  pthread_mutex_lock(&n->ckpt_mu);
  n->ckpt_stop = 1;
  pthread_cond_signal(&n->ckpt_cv);
  pthread_mutex_unlock(&n->ckpt_mu);
  if (n->ckpt_th) pthread_join(n->ckpt_th, NULL);
  outbox_free(n->out_head);
  pmap_free(&n->seq_procs, free);
  pmap_free(&n->pend_msgs, NULL);
  pmap_free(&n->pend_mods, free);
  pmap_free(&n->pend_seqs, free);
  free(n->dirty);
  if (n->seq_st) store_close(n->seq_st);
  if (n->seq_st2) store_close(n->seq_st2);
  for (int i = 0; i < n->npool; i++) store_close(n->pool[i]);
  item_key_free(n->key);
  free(n->db_path);
  free(n->data_dir);
  free(n);
}
