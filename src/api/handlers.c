/* handlers.c - one function per route: read the store or call the node,
 * build the answer (see docs/api.md for every route's request and answer).
 *
 * A handler takes a store connection from the node's pool only for as long
 * as it needs it, and gives it back before anything that may block for long
 * (the result long poll). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/graphql.h"
#include "api/internal.h"
#include "common/enc.h"
#include "common/metrics.h"
#include "vm/vm.h"

/* Long polls re-check api_stop this often. Not shorter: node_result_wait
 * gives a message it does not know yet min(timeout, 1 s) to show up. */
#define RESULT_POLL_SLICE_MS 1000

/* ---- answers ---- */

void api_resp_clear(api_resp *o) {
  free(o->body);
  free(o->location);
  memset(o, 0, sizeof *o);
}

void api_resp_text(api_resp *o, int status, const char *ctype, char *body, size_t len) {
  api_resp_clear(o);
  o->status = status;
  o->ctype = ctype;
  o->body = body;
  o->len = body ? len : 0;
}

void api_resp_json(api_resp *o, int status, json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(j);
  if (!s) {
    api_resp_text(o, 500, NULL, strdup("{\"error\":\"oom\"}"), 15);
    return;
  }
  api_resp_text(o, status, NULL, s, strlen(s));
}

static void resp_error_v(api_resp *o, int status, const char *code, const char *fmt, va_list ap) {
  char msg[600];
  vsnprintf(msg, sizeof msg, fmt, ap);
  json_t *j = json_object();
  json_object_set_new(j, "error", json_string(code ? code : "internal_error"));
  json_t *m = json_string(msg); /* NULL when msg is not UTF-8 */
  if (!m) m = json_string("(message not UTF-8)");
  if (msg[0])
    json_object_set_new(j, "message", m);
  else
    json_decref(m);
  api_resp_json(o, status, j);
}

void api_resp_error(api_resp *o, int status, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  resp_error_v(o, status, code, fmt, ap);
  va_end(ap);
}

void api_resp_vn_err(api_resp *o, const vn_err *e, int dflt) {
  int status = e->http >= 400 && e->http <= 599 ? e->http : dflt;
  if (!e->code) {
    api_resp_error(o, 500, "internal_error", "%s", e->msg[0] ? e->msg : "unexpected failure");
    return;
  }
  api_resp_error(o, status, e->code, "%s", e->msg);
}

/* `404 null`: how the hymx item routes say "no such item". */
static void resp_null(api_resp *o) {
  api_resp_text(o, 404, NULL, strdup("null"), 4);
}

static void resp_oom(api_resp *o) {
  api_resp_error(o, 500, "oom", "out of memory");
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store *store_or_fail(api *a, api_resp *o) {
  vn_err e = {0};
  store *s = node_store_get(a->n, &e);
  if (!s) api_resp_vn_err(o, &e, 503);
  return s;
}

/* Addresses: "0x…" ones compare without case (EIP-55 is only a checksum). */
static int same_address(const char *x, const char *y) {
  if (!x || !y) return 0;
  if (x[0] == '0' && (x[1] == 'x' || x[1] == 'X')) return strcasecmp(x, y) == 0;
  return strcmp(x, y) == 0;
}

/* Decode stored item bytes into the JSON form. NULL when they do not decode. */
static json_t *raw_to_json(const uint8_t *raw, size_t len, vn_err *e) {
  item *it = item_decode(raw, len, e);
  if (!it) return NULL;
  json_t *j = item_to_json(it);
  item_free(it);
  if (!j) vn_errf(e, "oom", "out of memory");
  return j;
}

static void resp_raw_item(api_resp *o, const uint8_t *raw, size_t len) {
  vn_err e = {0};
  json_t *j = raw_to_json(raw, len, &e);
  if (!j) {
    api_resp_error(o, 500, "store_corrupt", "stored item does not decode: %s", e.msg);
    return;
  }
  api_resp_json(o, 200, j);
}

/* ---- POST / ---- */

static void h_submit(api *a, const uint8_t *body, size_t len, api_resp *o) {
  if (len == 0) {
    api_resp_error(o, 400, "empty_body", "POST / takes a binary ANS-104 data item as its body");
    return;
  }
  node_submit_res res;
  memset(&res, 0, sizeof res);
  vn_err e = {0};
  int rc = node_submit(a->n, body, len, &res, &e);
  if (rc == 0) {
    api_resp_json(o, 200, json_pack("{s:s,s:s}", "id", res.id, "message", ""));
  } else if (rc == 1 && res.redirect_url) {
    api_resp_json(o, 308,
                  json_pack("{s:s,s:s}", "Acc-Id", res.redirect_acc ? res.redirect_acc : "", "URL",
                            res.redirect_url));
    o->location = strdup(res.redirect_url);
  } else if (rc == 1) {
    api_resp_error(o, 500, "internal_error", "redirect without a URL");
  } else {
    api_resp_vn_err(o, &e, 400);
  }
  node_submit_res_clear(&res);
}

/* ---- GET /result ---- */

/* When the client names the process, the message must be assigned to it. */
static int result_owner_ok(api *a, const api_route *r, api_resp *o) {
  if (!r->pid[0]) return 1;
  store *s = store_or_fail(a, o);
  if (!s) return 0;
  store_assignment as;
  memset(&as, 0, sizeof as);
  vn_err e = {0};
  int rc = store_assignment_by_message(s, r->msgid, &as, &e);
  node_store_put(a->n, s);
  if (rc < 0) {
    api_resp_vn_err(o, &e, 500);
    return 0;
  }
  int ok = rc == 0 || (as.pid && strcmp(as.pid, r->pid) == 0);
  store_assignment_clear(&as);
  if (!ok)
    api_resp_error(o, 404, "message_not_found", "message %s is not assigned to process %s",
                   r->msgid, r->pid);
  return ok;
}

static void h_result(api *a, const api_route *r, api_resp *o) {
  if (!result_owner_ok(a, r, o)) return;
  int64_t left = a->c->result_wait_ms > 0 ? a->c->result_wait_ms : 0;
  if (r->timeout_ms >= 0 && r->timeout_ms < left) left = r->timeout_ms;
  for (;;) {
    if (atomic_load(&a->stopping)) {
      api_resp_error(o, 503, "shutting_down", "the node is stopping");
      return;
    }
    int slice = left > RESULT_POLL_SLICE_MS ? RESULT_POLL_SLICE_MS : (int)left;
    char *json = NULL;
    vn_err e = {0};
    int64_t t0 = now_ms();
    int rc = node_result_wait(a->n, r->msgid, slice, &json, &e);
    if (rc == 1) {
      api_resp_text(o, 200, NULL, json, strlen(json));
      return;
    }
    if (rc < 0) {
      api_resp_vn_err(o, &e, 500);
      return;
    }
    if (e.code && e.http == 404) { /* unknown message: no point waiting */
      api_resp_vn_err(o, &e, 404);
      return;
    }
    int64_t spent = now_ms() - t0;
    left -= spent > slice ? spent : slice;
    if (left <= 0) break;
  }
  api_resp_error(o, 504, "result_pending",
                 "message %s is assigned but has no result yet; ask again", r->msgid);
}

/* ---- GET /results/:pid ---- */

typedef struct page_ctx {
  FILE *f;
  int limit, rows, asc;
} page_ctx;

static int page_row(void *ctx, int64_t nonce, int64_t ts, const char *json) {
  page_ctx *p = ctx;
  if (p->rows++ >= p->limit) return 0; /* the extra row only tells hasNextPage */
  char cur[160];
  int n = snprintf(cur, sizeof cur,
                   "{\"timestamp\":%lld,\"ordinate\":\"%lld\",\"cron\":null,\"sort\":\"%s\"}",
                   (long long)ts, (long long)nonce, p->asc ? "ASC" : "DESC");
  char *c64 = b64std_encode_alloc((const uint8_t *)cur, (size_t)n);
  if (!c64) return 1;
  fprintf(p->f, "%s{\"cursor\":\"%s\",\"node\":%s}", p->rows > 1 ? "," : "", c64,
          json && json[0] ? json : "null");
  free(c64);
  return 0;
}

static void h_results(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  vn_err e = {0};
  store_process p;
  memset(&p, 0, sizeof p);
  int rc = store_process_get(s, r->pid, &p, &e);
  store_process_clear(&p);
  if (rc <= 0) {
    node_store_put(a->n, s);
    if (rc < 0)
      api_resp_vn_err(o, &e, 500);
    else
      api_resp_error(o, 404, "process_not_found", "no process %s on this node", r->pid);
    return;
  }
  char *edges = NULL;
  size_t elen = 0;
  page_ctx pc = {.f = open_memstream(&edges, &elen), .limit = r->limit, .asc = r->asc};
  if (!pc.f) {
    node_store_put(a->n, s);
    resp_oom(o);
    return;
  }
  rc = store_result_page(s, r->pid, r->after, r->before, r->asc, r->limit + 1, page_row, &pc, &e);
  node_store_put(a->n, s);
  fclose(pc.f);
  if (rc < 0) {
    free(edges);
    api_resp_vn_err(o, &e, 500);
    return;
  }
  char *body = NULL;
  int n = asprintf(&body, "{\"pageInfo\":{\"hasNextPage\":%s},\"edges\":[%s]}",
                   pc.rows > r->limit ? "true" : "false", edges ? edges : "");
  free(edges);
  if (n < 0) {
    resp_oom(o);
    return;
  }
  api_resp_text(o, 200, NULL, body, (size_t)n);
}

/* ---- POST /dry-run ---- */

static void h_dryrun(api *a, const api_route *r, const uint8_t *body, size_t len, api_resp *o) {
  if (!r->pid[0]) {
    api_resp_error(o, 400, "missing_process_id", "POST /dry-run needs ?process-id=<pid>");
    return;
  }
  json_error_t je;
  snprintf(je.text, sizeof je.text, "empty body");
  json_t *msg = len ? json_loadb((const char *)body, len, 0, &je) : NULL;
  if (!json_is_object(msg)) {
    json_decref(msg);
    api_resp_error(o, 400, "bad_json", "dry-run body must be a JSON object: %s",
                   msg ? "not an object" : je.text);
    return;
  }
  json_t *res = NULL;
  vn_err e = {0};
  int rc = node_dryrun(a->n, r->pid, msg, &res, &e);
  json_decref(msg);
  if (rc < 0) {
    json_decref(res);
    api_resp_vn_err(o, &e, 400);
    return;
  }
  api_resp_json(o, 200, res ? res : json_null());
}

/* ---- GET /state/:pid ---- */

static void h_state(api *a, const api_route *r, api_resp *o) {
  char *data = NULL;
  size_t len = 0;
  int64_t nonce = -1;
  vn_err e = {0};
  if (node_state(a->n, r->pid, &data, &len, &nonce, &e)) {
    api_resp_vn_err(o, &e, 500);
    return;
  }
  (void)nonce;
  api_resp_text(o, 200, "application/octet-stream", data, len);
}

/* ---- items and assignments ---- */

/* Answer a store lookup of an item: 500 on error, 404 null when absent,
 * else the item's JSON form. */
static void resp_lookup(api_resp *o, int rc, const vn_err *e, const uint8_t *raw, size_t len) {
  if (rc < 0)
    api_resp_vn_err(o, e, 500);
  else if (rc == 0)
    resp_null(o);
  else
    resp_raw_item(o, raw, len);
}

static void h_message(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  uint8_t *raw = NULL;
  size_t len = 0;
  vn_err e = {0};
  int rc = store_item_get(s, r->msgid, &raw, &len, &e);
  node_store_put(a->n, s);
  resp_lookup(o, rc, &e, raw, len);
  free(raw);
}

/* by_nonce: look up (pid, nonce), else (msgid). want_message: answer the
 * assigned item rather than the Assignment item. */
static void h_assignment(api *a, const api_route *r, int by_nonce, int want_message, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  store_assignment as;
  memset(&as, 0, sizeof as);
  vn_err e = {0};
  int rc = by_nonce ? store_assignment_by_nonce(s, r->pid, r->nonce, &as, &e)
                    : store_assignment_by_message(s, r->msgid, &as, &e);
  uint8_t *raw = NULL;
  size_t len = 0;
  if (rc == 1 && want_message) rc = store_item_get(s, as.message_id, &raw, &len, &e);
  node_store_put(a->n, s);
  if (want_message)
    resp_lookup(o, rc, &e, raw, len);
  else
    resp_lookup(o, rc, &e, as.raw, as.raw_len);
  free(raw);
  store_assignment_clear(&as);
}

/* GET /:msgid?process-id= (AO SU): the message with its assignment. */
static void h_su_message(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  uint8_t *raw = NULL;
  size_t len = 0;
  store_assignment as;
  memset(&as, 0, sizeof as);
  vn_err e = {0};
  int rc = store_item_get(s, r->msgid, &raw, &len, &e);
  int arc = rc == 1 ? store_assignment_by_message(s, r->msgid, &as, &e) : 0;
  node_store_put(a->n, s);
  if (rc < 0 || arc < 0) {
    api_resp_vn_err(o, &e, 500);
  } else if (rc == 0 || (r->pid[0] && (arc == 0 || strcmp(as.pid, r->pid) != 0))) {
    api_resp_error(o, 404, "message_not_found", "no message %s%s%s here", r->msgid,
                   r->pid[0] ? " in process " : "", r->pid);
  } else {
    json_t *m = raw_to_json(raw, len, &e);
    json_t *asg = arc == 1 ? raw_to_json(as.raw, as.raw_len, &e) : json_null();
    if (!m || !asg) {
      json_decref(m);
      json_decref(asg);
      api_resp_error(o, 500, "store_corrupt", "stored item does not decode: %s", e.msg);
    } else {
      api_resp_json(o, 200, json_pack("{s:o,s:o}", "message", m, "assignment", asg));
    }
  }
  free(raw);
  store_assignment_clear(&as);
}

/* ---- processes ---- */

static void h_nonce(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  store_process p;
  memset(&p, 0, sizeof p);
  vn_err e = {0};
  int rc = store_process_get(s, r->pid, &p, &e);
  node_store_put(a->n, s);
  if (rc < 0)
    api_resp_vn_err(o, &e, 500);
  else if (rc == 0)
    api_resp_error(o, 404, "process_not_found", "no process %s on this node", r->pid);
  else
    api_resp_json(o, 200, json_integer(p.nonce));
  store_process_clear(&p);
}

static int collect_pid(void *ctx, const store_process *p) {
  json_array_append_new(ctx, json_string(p->pid));
  return 0;
}

/* The AO SU process document: the spawn item plus its assignment (nonce 0). */
static json_t *su_process(store *s, const char *pid, vn_err *e) {
  uint8_t *raw = NULL;
  size_t len = 0;
  store_assignment as;
  memset(&as, 0, sizeof as);
  json_t *out = NULL;
  item *it = NULL;
  int rc = store_item_get(s, pid, &raw, &len, e);
  if (rc == 1) rc = store_assignment_by_nonce(s, pid, 0, &as, e);
  if (rc == 0) vn_errh(e, 500, "store_corrupt", "process %s has no spawn item or assignment", pid);
  if (rc != 1) goto done;
  it = item_decode(raw, len, e);
  json_t *asg = it ? raw_to_json(as.raw, as.raw_len, e) : NULL;
  json_t *ij = it ? item_to_json(it) : NULL;
  if (!it || !asg || !ij) {
    json_decref(asg);
    json_decref(ij);
    if (e->code == NULL)
      vn_errh(e, 500, "store_corrupt", "stored spawn of %s does not decode", pid);
    goto done;
  }
  char addr[ITEM_ADDR_MAX] = "";
  item_owner_address(it, addr);
  json_t *proc = json_pack(
      "{s:s,s:s,s:{s:s,s:O},s:O,s:I,s:O,s:O,s:O}", "id", pid, "process_id", pid, "owner", "address",
      addr, "key", json_object_get(ij, "owner"), "tags", json_object_get(ij, "tags"), "timestamp",
      (json_int_t)as.timestamp_ms, "data", json_object_get(ij, "data"), "anchor",
      json_object_get(ij, "anchor"), "signature", json_object_get(ij, "signature"));
  json_decref(ij);
  if (!proc) {
    json_decref(asg);
    vn_errf(e, "oom", "out of memory");
    goto done;
  }
  out = json_pack("{s:o,s:o}", "process", proc, "assignment", asg);
done:
  item_free(it);
  free(raw);
  store_assignment_clear(&as);
  return out;
}

static void h_processes(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  vn_err e = {0};
  json_t *out = NULL;
  int rc = 0;
  if (same_address(r->acc, node_address(a->n))) {
    out = json_array();
    rc = store_process_each(s, collect_pid, out, &e);
  } else if (r->pid[0]) {
    store_process p;
    memset(&p, 0, sizeof p);
    rc = store_process_get(s, r->pid, &p, &e);
    store_process_clear(&p);
    if (rc == 1) {
      out = su_process(s, r->pid, &e);
      rc = out ? 0 : -1;
    } else if (rc == 0) {
      out = json_array(); /* neither a process here nor this node */
    }
  } else {
    out = json_array(); /* another node's address: it hosts nothing we know of */
  }
  node_store_put(a->n, s);
  if (rc < 0) {
    json_decref(out);
    api_resp_vn_err(o, &e, 500);
    return;
  }
  api_resp_json(o, 200, out);
}

static void h_verify_log(api *a, const api_route *r, api_resp *o);

/* ---- node registry ---- */

static json_t *node_json(const store_node *n) {
#define S(x) ((x) ? (x) : "")
  return json_pack("{s:s,s:s,s:s,s:s,s:s}", "Acc-Id", S(n->acc_id), "Name", S(n->name), "Role",
                   S(n->role), "Desc", S(n->desc), "URL", S(n->url));
#undef S
}

static int collect_node(void *ctx, const store_node *n) {
  json_array_append_new(ctx, node_json(n));
  return 0;
}

/* This node's registry entry; built from the config when not registered. */
static json_t *self_json(api *a, store *s) {
  store_node sn;
  memset(&sn, 0, sizeof sn);
  json_t *j = NULL;
  if (store_node_get(s, node_address(a->n), &sn, NULL) == 1) j = node_json(&sn);
  store_node_clear(&sn);
  if (j) return j;
  store_node me = {.acc_id = (char *)node_address(a->n),
                   .name = a->c->node_name,
                   .desc = a->c->node_desc,
                   .url = (char *)config_base_url(a->c)};
  return node_json(&me);
}

static void h_nodes(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  vn_err e = {0};
  json_t *out = NULL;
  int rc = 0;
  if (r->id == AR_NODES) {
    out = json_array();
    rc = store_node_each(s, collect_node, out, &e);
  } else if (r->id == AR_NODE) {
    store_node sn;
    memset(&sn, 0, sizeof sn);
    rc = store_node_get(s, r->acc, &sn, &e);
    if (rc == 0 && same_address(r->acc, node_address(a->n))) {
      out = self_json(a, s);
      rc = 1;
    } else if (rc == 1) {
      out = node_json(&sn);
    }
    store_node_clear(&sn);
    if (rc == 0) {
      node_store_put(a->n, s);
      api_resp_error(o, 404, "node_not_found", "no node %s in the registry", r->acc);
      return;
    }
  } else { /* AR_NODES_BY_PROCESS */
    store_process p;
    memset(&p, 0, sizeof p);
    rc = store_process_get(s, r->pid, &p, &e);
    store_process_clear(&p);
    out = json_array();
    if (rc == 1) json_array_append_new(out, self_json(a, s));
  }
  node_store_put(a->n, s);
  if (rc < 0) {
    json_decref(out);
    api_resp_vn_err(o, &e, 500);
    return;
  }
  api_resp_json(o, 200, out);
}

/* ---- modules ---- */

static void collect_format(void *ctx, const char *format, const vm_ops *ops) {
  (void)ops;
  json_array_append_new(ctx, json_string(format));
}

static int collect_module(void *ctx, const char *id, const char *format) {
  json_array_append_new(ctx, json_pack("{s:s,s:s}", "id", id, "format", format ? format : ""));
  return 0;
}

static void h_modules(api *a, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  json_t *formats = json_array(), *mods = json_array();
  vm_each_format(collect_format, formats);
  vn_err e = {0};
  int rc = store_module_each(s, collect_module, mods, &e);
  node_store_put(a->n, s);
  if (rc < 0) {
    json_decref(formats);
    json_decref(mods);
    api_resp_vn_err(o, &e, 500);
    return;
  }
  api_resp_json(o, 200, json_pack("{s:o,s:o}", "formats", formats, "modules", mods));
}

static void h_module(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  char *format = NULL;
  uint8_t *raw = NULL;
  size_t len = 0;
  vn_err e = {0};
  int rc = store_module_get(s, r->msgid, &format, &raw, &len, &e);
  node_store_put(a->n, s);
  resp_lookup(o, rc, &e, raw, len);
  free(format);
  free(raw);
}

/* ---- the rest ---- */

static void h_cache(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  char *v = NULL;
  vn_err e = {0};
  int rc = store_cache_get(s, r->pid, r->key, &v, &e);
  node_store_put(a->n, s);
  if (rc < 0)
    api_resp_vn_err(o, &e, 500);
  else if (rc == 0)
    api_resp_error(o, 404, "cache_key_not_found", "process %s has no cache key \"%s\"", r->pid,
                   r->key);
  else {
    api_resp_text(o, 200, "text/plain; charset=utf-8", v, strlen(v));
    v = NULL;
  }
  free(v);
}

static void h_metrics(api_resp *o) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    resp_oom(o);
    return;
  }
  metrics_render(f);
  fclose(f);
  api_resp_text(o, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}

void api_handle(api *a, const api_route *r, const uint8_t *body, size_t len, api_resp *o) {
  switch (r->id) {
    case AR_SUBMIT:
      h_submit(a, body, len, o);
      break;
    case AR_SU_INFO:
      api_resp_json(
          o, 200,
          json_pack("{s:I,s:s}", "timestamp", (json_int_t)now_ms(), "address", node_address(a->n)));
      break;
    case AR_INFO: {
      json_t *j = node_info(a->n);
      if (j)
        api_resp_json(o, 200, j);
      else
        resp_oom(o);
      break;
    }
    case AR_TIMESTAMP:
      /* No chain behind this node: the block height is a constant zero. */
      api_resp_json(o, 200,
                    json_pack("{s:I,s:s}", "timestamp", (json_int_t)now_ms(), "block_height",
                              "000000000000"));
      break;
    case AR_RESULT:
      h_result(a, r, o);
      break;
    case AR_RESULTS:
      h_results(a, r, o);
      break;
    case AR_DRYRUN:
      h_dryrun(a, r, body, len, o);
      break;
    case AR_STATE:
      h_state(a, r, o);
      break;
    case AR_MESSAGE:
      h_message(a, r, o);
      break;
    case AR_MESSAGE_BY_NONCE:
      h_assignment(a, r, 1, 1, o);
      break;
    case AR_ASSIGNMENT_BY_NONCE:
      h_assignment(a, r, 1, 0, o);
      break;
    case AR_ASSIGNMENT_BY_MESSAGE:
      h_assignment(a, r, 0, 0, o);
      break;
    case AR_SU_MESSAGE:
      h_su_message(a, r, o);
      break;
    case AR_NONCE:
      h_nonce(a, r, o);
      break;
    case AR_NODES:
    case AR_NODE:
    case AR_NODES_BY_PROCESS:
      h_nodes(a, r, o);
      break;
    case AR_PROCESSES:
      h_processes(a, r, o);
      break;
    case AR_MODULES:
      h_modules(a, o);
      break;
    case AR_MODULE:
      h_module(a, r, o);
      break;
    case AR_CACHE:
      h_cache(a, r, o);
      break;
    case AR_METRICS:
      h_metrics(o);
      break;
    case AR_VERIFY_LOG:
      h_verify_log(a, r, o);
      break;
    case AR_GRAPHQL:
      api_graphql(a, body, len, o);
      break;
    default:
      api_resp_error(o, 404, "not_found", "no such route");
      break;
  }
}

/* ---- GET /verify-log/:pid ---- */


static void h_verify_log(api *a, const api_route *r, api_resp *o) {
  store *s = store_or_fail(a, o);
  if (!s) return;
  vn_err e = {0};
  vlog_report rep;
  int rc = node_verify_log_store(s, r->pid, node_address(a->n), &rep, &e);
  node_store_put(a->n, s);
  if (rc < 0) {
    api_resp_vn_err(o, &e, 500);
    return;
  }
  json_t *j = json_pack("{s:s,s:I,s:b,s:I,s:s}", "pid", r->pid, "checked", (json_int_t)rep.checked,
                        "valid", rc == 0, "bad_nonce", (json_int_t)(rc == 0 ? -1 : rep.bad_nonce),
                        "reason", rep.reason);
  if (!j) /* a reason that is not UTF-8 */
    j = json_pack("{s:s,s:I,s:b,s:I,s:s}", "pid", r->pid, "checked", (json_int_t)rep.checked,
                  "valid", rc == 0, "bad_nonce", (json_int_t)rep.bad_nonce, "reason", "");
  api_resp_json(o, 200, j);
}
