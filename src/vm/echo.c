/* echo.c - the built-in test VM ("vmnode.echo.v1").
 *
 * Exists so the whole pipeline (verify → assign → apply → store → serve) can
 * be tested end to end without a real runtime. It is deterministic and keeps
 * a little state so checkpoint/restore and replay are observable:
 *   Output = {"echo": <Data>, "action": <Action>, "nonce": <Nonce>,
 *             "from": <from>, "count": <messages applied so far>,
 *             "digest": <hex sha256 over all data seen so far>}
 * Control tags on a message (for tests of the result paths):
 *   Echo-Error: <text>      -> Result.Error = text (state still advances)
 *   Echo-Cache: <key>       -> Result.Cache[key] = Data
 *   Echo-Send:  <target>    -> one outgoing message to target with the Data */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "vm/vm.h"

typedef struct echo_vm {
  vm base;
  long long count;
  uint8_t digest[32];
} echo_vm;

static int echo_spawn(const vm_spawn_args *a, vm **out, vn_err *err) {
  (void)a;
  echo_vm *e = calloc(1, sizeof *e);
  if (!e) return vn_errf(err, "oom", "out of memory");
  e->base.ops = &vm_echo_ops;
  *out = &e->base;
  return 0;
}

static const char *meta_str(json_t *meta, const char *k) {
  const char *s = json_string_value(json_object_get(meta, k));
  return s ? s : "";
}

static int echo_apply(vm *v, const vm_msg *m, json_t **result, vn_err *err) {
  echo_vm *e = (echo_vm *)v;
  const item *it = m->msg;
  json_t *r = vm_result_new();
  if (!r) return vn_errf(err, "oom", "out of memory");

  /* digest' = sha256(digest || data): order-sensitive summary of the log. */
  uint8_t next[32];
  if (m->mode != VM_DRYRUN) {
    uint8_t *buf = malloc(32 + it->data_len);
    if (!buf) {
      json_decref(r);
      return vn_errf(err, "oom", "out of memory");
    }
    memcpy(buf, e->digest, 32);
    if (it->data_len) memcpy(buf + 32, it->data, it->data_len);
    item_sha256(buf, 32 + it->data_len, next);
    free(buf);
    memcpy(e->digest, next, 32);
    e->count++;
  }
  char dhex[65];
  hex_encode(e->digest, 32, dhex, sizeof dhex);
  json_t *nonce = json_object_get(m->meta, "Nonce");
  json_t *out = json_pack("{s:s%,s:s,s:O,s:s,s:I,s:s}", "echo",
                          it->data ? (const char *)it->data : "", it->data_len, "action", meta_str(m->meta, "Action"), "nonce",
                          nonce ? nonce : json_null(), "from", m->from ? m->from : "", "count",
                          (json_int_t)e->count, "digest", dhex);
  if (!out) {
    /* Data that is not UTF-8: echo it as base64url instead. */
    char *b = b64url_encode_alloc(it->data, it->data_len);
    out = json_pack("{s:s,s:s,s:O,s:s,s:I,s:s}", "echo_b64", b, "action",
                    meta_str(m->meta, "Action"), "nonce", nonce ? nonce : json_null(), "from",
                    m->from ? m->from : "", "count", (json_int_t)e->count, "digest", dhex);
    free(b);
  }
  json_object_set_new(r, "Output", out);

  const char *eerr = item_tag_get(it, "Echo-Error");
  if (eerr) json_object_set_new(r, "Error", json_string(eerr));
  const char *key = item_tag_get(it, "Echo-Cache");
  if (key) {
    json_t *val = json_stringn((const char *)it->data, it->data_len);
    if (val) json_object_set_new(json_object_get(r, "Cache"), key, val);
  }
  const char *to = item_tag_get(it, "Echo-Send");
  if (to) {
    json_t *msg = json_pack("{s:s,s:s%,s:[{s:s,s:s}]}", "Target", to, "Data",
                            (const char *)it->data, it->data_len, "Tags", "name", "Action",
                            "value", "Echoed");
    if (msg) json_array_append_new(json_object_get(r, "Messages"), msg);
  }
  *result = r;
  return 0;
}

static int echo_checkpoint(vm *v, char **state, size_t *len, vn_err *err) {
  echo_vm *e = (echo_vm *)v;
  char dhex[65];
  hex_encode(e->digest, 32, dhex, sizeof dhex);
  char *s = NULL;
  int n = asprintf(&s, "{\"count\":%lld,\"digest\":\"%s\"}", e->count, dhex);
  if (n < 0) return vn_errf(err, "oom", "out of memory");
  *state = s;
  *len = (size_t)n;
  return 0;
}

static int echo_restore(vm *v, const char *state, size_t len, vn_err *err) {
  echo_vm *e = (echo_vm *)v;
  json_error_t je;
  json_t *j = json_loadb(state, len, 0, &je);
  const char *d = j ? json_string_value(json_object_get(j, "digest")) : NULL;
  json_t *c = j ? json_object_get(j, "count") : NULL;
  if (!d || !json_is_integer(c) || hex_decode(d, e->digest, 32) != 32) {
    json_decref(j);
    return vn_errf(err, "bad_checkpoint", "echo VM: checkpoint is not {count, digest}");
  }
  e->count = json_integer_value(c);
  json_decref(j);
  return 0;
}

static void echo_close(vm *v) {
  free(v);
}

const vm_ops vm_echo_ops = {
    .name = "echo",
    .spawn = echo_spawn,
    .apply = echo_apply,
    .checkpoint = echo_checkpoint,
    .restore = echo_restore,
    .close = echo_close,
};
