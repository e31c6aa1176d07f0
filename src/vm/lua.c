/* lua.c - the `lua` VM backend: AO processes in sandboxed Lua workers.
 *
 * One worker process per VM instance, forked from a zygote that has loaded
 * liblua and vmnode's AO library (runtime/lua, embedded in the binary by
 * tools/embed.c), so a spawn does no Lua work and no exec. The zygote is
 * started on the first spawn (vm_lua_init may start it earlier).
 *
 * Each message is one call of the library's entry `VMNODE_APPLY` with the
 * payload {"msg": <AO message>, "env": <Process and Module>}; the answer is
 * the Result as JSON. The worker enforces the module's Compute-Limit
 * (instructions, reported as GasUsed) and Memory-Limit (the arena's cap);
 * a message that runs out of either gets an Error result and the process
 * stays usable. A worker that dies (crash, seccomp kill, wall-clock timeout)
 * is a VM failure (-1): the node records an Error result for that message,
 * and rebuilds the process without it (see docs/lua-vm.md).
 *
 * Dry-runs: the state is saved into a memory file before the call and put
 * back after it, so a read-only message changes nothing. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/enc.h"
#include "common/log.h"
#include "sandbox/worker.h"
#include "vm/vm.h"

extern const sbx_module vm_lua_runtime[];
extern const unsigned vm_lua_runtime_count;
extern const char vm_lua_runtime_sha256[];

static const char PRELOAD[] = "VMNODE_APPLY = require('process').apply_json";

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static sbx_zygote *g_zyg;
static vm_lua_cfg g_cfg;
static int g_cfg_set;
static char g_note[512];

typedef struct lua_vm {
  vm base;
  sbx_worker *w;
  char *env_json; /* {"Process":{…},"Module":{…}} */
  char pid[ITEM_ID_LEN + 1];
  char module_id[ITEM_ID_LEN + 1];
  uint64_t gas;
  size_t mem_cap;
  int env_sent; /* the library keeps env after the first call */
} lua_vm;

const char *vm_lua_runtime_hash(void) { return vm_lua_runtime_sha256; }

/* ---- configuration and the zygote ---- */

static void cfg_defaults(vm_lua_cfg *c) {
  if (!c->timeout_ms) c->timeout_ms = 10000;
  if (!c->mem_cap) c->mem_cap = VM_LUA_MEM_DEFAULT;
  if (!c->gas) c->gas = VM_LUA_GAS_DEFAULT;
  if (!c->pool) c->pool = 2;
}

static int start_locked(vn_err *err) {
  if (g_zyg) return 0;
  if (!g_cfg_set) {
    memset(&g_cfg, 0, sizeof g_cfg);
    g_cfg.ns = SBX_NS_ALL;
    g_cfg_set = 1;
  }
  cfg_defaults(&g_cfg);
  sbx_zygote_cfg zc = {.modules = vm_lua_runtime,
                       .nmodules = vm_lua_runtime_count,
                       .preload = PRELOAD,
                       .preload_len = sizeof PRELOAD - 1,
                       .preload_name = "=vmnode",
                       .mem_cap = g_cfg.mem_cap_max ? g_cfg.mem_cap_max : VM_LUA_MEM_MAX,
                       .ns = g_cfg.ns,
                       .no_seccomp = g_cfg.no_seccomp,
                       .pool = g_cfg.pool,
                       .timeout_ms = g_cfg.timeout_ms};
  if (sbx_zygote_start(&zc, &g_zyg, err)) {
    g_zyg = NULL;
    vn_err_wrap(err, "starting the Lua runtime");
    return -1;
  }
  snprintf(g_note, sizeof g_note, "%s", sbx_zygote_note(g_zyg));
  vn_log(VN_LOG_INFO, "lua.runtime_started", "zygote=%d runtime=%.16s sandbox=%s",
         (int)sbx_zygote_pid(g_zyg), vm_lua_runtime_sha256, g_note[0] ? "partial" : "full");
  return 0;
}

int vm_lua_init(const vm_lua_cfg *cfg, vn_err *err) {
  pthread_mutex_lock(&g_mu);
  if (cfg) {
    g_cfg = *cfg;
    g_cfg_set = 1;
  }
  int rc = cfg && cfg->lazy ? 0 : start_locked(err);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

void vm_lua_shutdown(void) {
  pthread_mutex_lock(&g_mu);
  if (g_zyg) sbx_zygote_stop(g_zyg);
  g_zyg = NULL;
  pthread_mutex_unlock(&g_mu);
}

const char *vm_lua_note(void) {
  pthread_mutex_lock(&g_mu);
  const char *r = g_zyg ? g_note : NULL;
  pthread_mutex_unlock(&g_mu);
  return r;
}

pid_t vm_lua_worker_pid(vm *v) {
  lua_vm *l = (lua_vm *)v;
  return l && l->w ? sbx_worker_pid(l->w) : -1;
}

/* ---- module limits ---- */

/* "256-mb", "1-gb", "512kb", "1048576" -> bytes; 0 when unreadable. */
uint64_t vm_lua_parse_size(const char *s) {
  if (!s || !*s) return 0;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return 0;
  while (*end == '-' || *end == ' ' || *end == '_') end++;
  uint64_t mul = 1;
  if (!*end || !strcasecmp(end, "b")) mul = 1;
  else if (!strcasecmp(end, "kb") || !strcasecmp(end, "k") || !strcasecmp(end, "kib")) mul = 1ULL << 10;
  else if (!strcasecmp(end, "mb") || !strcasecmp(end, "m") || !strcasecmp(end, "mib")) mul = 1ULL << 20;
  else if (!strcasecmp(end, "gb") || !strcasecmp(end, "g") || !strcasecmp(end, "gib")) mul = 1ULL << 30;
  else return 0;
  if (v > UINT64_MAX / mul) return 0;
  return (uint64_t)v * mul;
}

/* ---- JSON helpers ---- */

/* A JSON string for bytes that may not be UTF-8: invalid sequences become
 * U+FFFD (deterministic). */
static json_t *jstr_lossy(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j) return j;
  char *buf = malloc(n * 3 + 1);
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    json_t *t = len && i + len <= n ? json_stringn(s + i, len) : NULL;
    if (t && c) {
      memcpy(buf + o, s + i, len);
      o += len;
      i += len;
      json_decref(t);
    } else {
      json_decref(t);
      memcpy(buf + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  j = json_stringn(buf, o);
  free(buf);
  return j ? j : json_string("");
}

static json_t *tags_json(const item *it) {
  json_t *a = json_array();
  for (size_t i = 0; i < it->ntags; i++)
    json_array_append_new(a, json_pack("{s:o,s:o}", "name",
                                       jstr_lossy(it->tags[i].name, it->tags[i].name_len), "value",
                                       jstr_lossy(it->tags[i].value, it->tags[i].value_len)));
  return a;
}

static json_t *anchor_json(const item *it) {
  if (!it->has_anchor) return json_string("");
  int printable = 1;
  for (int i = 0; i < 32; i++)
    if (it->anchor[i] < 0x20 || it->anchor[i] > 0x7e) printable = 0;
  if (printable) return json_stringn((const char *)it->anchor, 32);
  char b[64];
  b64url_encode(it->anchor, 32, b, sizeof b);
  return json_string(b);
}

static json_t *party_json(const char *id, const item *it) {
  char owner[ITEM_ADDR_MAX] = "";
  if (it) item_owner_address(it, owner);
  return json_pack("{s:s,s:s,s:o}", "Id", id, "Owner", owner,
                   "Tags", it ? tags_json(it) : json_array());
}

/* ---- the backend ---- */

static int lua_spawn(const vm_spawn_args *a, vm **out, vn_err *err) {
  pthread_mutex_lock(&g_mu);
  int rc = start_locked(err);
  sbx_zygote *z = g_zyg;
  pthread_mutex_unlock(&g_mu);
  if (rc) return -1;
  lua_vm *l = calloc(1, sizeof *l);
  l->base.ops = &vm_lua_ops;
  snprintf(l->pid, sizeof l->pid, "%s", a->pid);
  snprintf(l->module_id, sizeof l->module_id, "%s", a->module ? a->module->id : "");
  l->gas = g_cfg.gas;
  l->mem_cap = g_cfg.mem_cap;
  const char *cl = a->module ? item_tag_get(a->module, "Compute-Limit") : NULL;
  const char *ml = a->module ? item_tag_get(a->module, "Memory-Limit") : NULL;
  if (cl && *cl) {
    char *end = NULL;
    unsigned long long g = strtoull(cl, &end, 10);
    if (end && !*end && g > 0) l->gas = g;
  }
  if (ml && *ml) {
    uint64_t m = vm_lua_parse_size(ml);
    if (m) l->mem_cap = m;
  }
  size_t max = g_cfg.mem_cap_max ? g_cfg.mem_cap_max : VM_LUA_MEM_MAX;
  if (l->mem_cap > max) l->mem_cap = max;
  json_t *env = json_pack("{s:o,s:o}", "Process", party_json(a->pid, a->process), "Module",
                          party_json(l->module_id, a->module));
  l->env_json = json_dumps(env, JSON_COMPACT);
  json_decref(env);
  if (sbx_worker_spawn(z, &l->w, err)) {
    free(l->env_json);
    free(l);
    return -1;
  }
  *out = &l->base;
  return 0;
}

static json_t *msg_json(lua_vm *l, const vm_msg *m) {
  const item *it = m->msg;
  char owner[ITEM_ADDR_MAX] = "";
  item_owner_address(it, owner);
  char target[64];
  if (it->has_target) b64url_encode(it->target, 32, target, sizeof target);
  else snprintf(target, sizeof target, "%s", l->pid);
  size_t slen = ((it->sig_len + 2) / 3) * 4 + 4;
  char *sig = malloc(slen);
  b64url_encode(it->sig, it->sig_len, sig, slen);
  json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:s}", "Id", it->id, "Signature", sig,
                        "Owner", owner, "From", m->from ? m->from : owner, "Target", target,
                        "Anchor", anchor_json(it), "Tags", tags_json(it), "Module", l->module_id);
  free(sig);
  json_t *d = json_stringn((const char *)it->data, it->data_len);
  if (d) {
    json_object_set_new(j, "Data", d);
  } else {
    size_t bl = ((it->data_len + 2) / 3) * 4 + 4;
    char *b = malloc(bl);
    b64url_encode(it->data, it->data_len, b, bl);
    json_object_set_new(j, "Data-Base64", json_string(b));
    free(b);
  }
  json_t *ts = json_object_get(m->meta, "Timestamp");
  json_t *nonce = json_object_get(m->meta, "Nonce");
  json_object_set_new(j, "Timestamp", ts ? json_incref(ts) : json_integer(0));
  if (nonce) json_object_set(j, "Nonce", nonce);
  json_t *hc = json_object_get(m->meta, "Hash-Chain");
  if (hc) json_object_set(j, "Hash-Chain", hc);
  json_t *bh = json_object_get(m->meta, "Block-Height");
  if (bh) json_object_set(j, "Block-Height", bh);
  if (m->mode == VM_DRYRUN) json_object_set_new(j, "Read-Only", json_true());
  return j;
}

/* The result for a message the library could not finish (budget, memory,
 * an error escaping process.handle). */
static json_t *error_result(const char *what, const sbx_result *r) {
  json_t *res = vm_result_new();
  char buf[SBX_ERROR_MAX + 128];
  snprintf(buf, sizeof buf, "%s: %s", what, r->error ? r->error : "");
  json_object_set_new(res, "Error", jstr_lossy(buf, strlen(buf)));
  json_object_set_new(res, "Output",
                      json_pack("{s:o,s:s}", "data", jstr_lossy(r->output ? r->output : "",
                                                                r->output ? r->output_len : 0),
                                "prompt", ""));
  return res;
}

/* Run one message on the worker; *result set on 0. */
static int run(lua_vm *l, const vm_msg *m, json_t **result, vn_err *err) {
  json_t *msg = msg_json(l, m);
  char *mj = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!mj) return vn_errf(err, "lua_payload", "cannot encode the message as JSON");
  size_t ml = strlen(mj), el = strlen(l->env_json);
  char *payload = malloc(ml + el + 32);
  /* env is the same for every message: the library keeps the one it got
   * (part of the state, so checkpoints carry it); a new worker gets it
   * again. */
  int pl = l->env_sent ? sprintf(payload, "{\"msg\":%s}", mj)
                       : sprintf(payload, "{\"msg\":%s,\"env\":%s}", mj, l->env_json);
  free(mj);
  int64_t ts = json_integer_value(json_object_get(m->meta, "Timestamp"));
  /* The library seeds math.random from the message itself; the engine's
   * own reseed only has to be deterministic. */
  uint64_t s0 = 1469598103934665603ULL;
  for (const char *p = m->msg->id; *p; p++) s0 = (s0 ^ (unsigned char)*p) * 1099511628211ULL;
  sbx_call c = {.entry = "VMNODE_APPLY",
                .payload = payload,
                .payload_len = (size_t)pl,
                .gas_limit = l->gas,
                .timestamp = ts / 1000,
                .seed = {s0, (uint64_t)json_integer_value(json_object_get(m->meta, "Nonce"))},
                .mem_cap = l->mem_cap};
  sbx_result r;
  memset(&r, 0, sizeof r);
  int rc = sbx_worker_apply(l->w, &c, &r, err);
  free(payload);
  if (rc) return -1;
  if (r.status == SBX_OK && m->mode != VM_DRYRUN) l->env_sent = 1;
  json_t *res = NULL;
  switch (r.status) {
  case SBX_OK: {
    json_error_t je;
    res = r.has_value ? json_loadb(r.value, r.value_len, 0, &je) : NULL;
    if (!json_is_object(res)) {
      json_decref(res);
      char why[300];
      snprintf(why, sizeof why, "the process's result is not a JSON object (%s)",
               r.has_value ? je.text : "no value");
      free(r.error);
      r.error = strdup(why);
      res = error_result("result", &r);
    }
    break;
  }
  case SBX_ERR_GAS: res = error_result("compute limit", &r); break;
  case SBX_ERR_MEMORY: {
    char *e = r.error;
    char buf[200];
    snprintf(buf, sizeof buf, "not enough memory: the process hit its Memory-Limit of %zu bytes",
             l->mem_cap);
    r.error = buf;
    res = error_result("memory limit", &r);
    r.error = e;
    break;
  }
  default: res = error_result(sbx_status_name(r.status), &r); break;
  }
  /* The hymx Result fields every consumer expects. */
  static const char *arrays[] = {"Messages", "Spawns", "Assignments"};
  for (int i = 0; i < 3; i++)
    if (!json_is_array(json_object_get(res, arrays[i])))
      json_object_set_new(res, arrays[i], json_array());
  if (!json_is_object(json_object_get(res, "Cache"))) json_object_set_new(res, "Cache", json_object());
  if (!json_object_get(res, "Output")) json_object_set_new(res, "Output", json_string(""));
  if (!json_object_get(res, "Data")) json_object_set_new(res, "Data", json_string(""));
  if (!json_object_get(res, "Error")) json_object_set_new(res, "Error", json_null());
  json_object_set_new(res, "GasUsed", json_integer((json_int_t)r.gas_used));
  sbx_result_free(&r);
  *result = res;
  return 0;
}

static int mem_file(vn_err *err) {
  int fd = memfd_create("vmnode-state", MFD_CLOEXEC);
  if (fd < 0) vn_errf(err, "lua_state", "memfd_create: %s", strerror(errno));
  return fd;
}

static int lua_apply(vm *v, const vm_msg *m, json_t **result, vn_err *err) {
  lua_vm *l = (lua_vm *)v;
  if (!l->w || sbx_worker_exited(l->w))
    return vn_errf(err, VM_ERR_GONE, "the process's worker exited while idle (pid %d)",
                   l->w ? (int)sbx_worker_pid(l->w) : -1);
  if (m->mode != VM_DRYRUN) return run(l, m, result, err);
  /* Dry-run: save, run, put back. */
  int fd = mem_file(err);
  if (fd < 0) return -1;
  int rc = sbx_worker_checkpoint(l->w, fd, 0, NULL, err);
  if (!rc) rc = run(l, m, result, err);
  if (!rc && sbx_worker_restore(l->w, fd, 0, NULL, err)) {
    json_decref(*result);
    *result = NULL;
    rc = -1;
  }
  close(fd);
  return rc;
}

static int lua_checkpoint(vm *v, char **state, size_t *len, vn_err *err) {
  lua_vm *l = (lua_vm *)v;
  int fd = mem_file(err);
  if (fd < 0) return -1;
  sbx_image_info info;
  int rc = sbx_worker_checkpoint(l->w, fd, 0, &info, err);
  if (!rc) {
    *len = (size_t)info.file_len;
    *state = malloc(*len ? *len : 1);
    size_t got = 0;
    while (got < *len) {
      ssize_t k = pread(fd, *state + got, *len - got, (off_t)got);
      if (k <= 0) break;
      got += (size_t)k;
    }
    if (got != *len) {
      free(*state);
      *state = NULL;
      rc = vn_errf(err, "lua_state", "reading the checkpoint back failed");
    }
  }
  close(fd);
  return rc;
}

static int lua_restore(vm *v, const char *state, size_t len, vn_err *err) {
  lua_vm *l = (lua_vm *)v;
  int fd = mem_file(err);
  if (fd < 0) return -1;
  size_t put = 0;
  while (put < len) {
    ssize_t k = pwrite(fd, state + put, len - put, (off_t)put);
    if (k <= 0) break;
    put += (size_t)k;
  }
  int rc = put == len ? sbx_worker_restore(l->w, fd, SBX_RESTORE_VERIFY, NULL, err)
                      : vn_errf(err, "lua_state", "writing the state failed");
  close(fd);
  return rc;
}

static void lua_close(vm *v) {
  lua_vm *l = (lua_vm *)v;
  if (!l) return;
  if (l->w) sbx_worker_close(l->w);
  free(l->env_json);
  free(l);
}

const vm_ops vm_lua_ops = {
    .name = "lua",
    .spawn = lua_spawn,
    .apply = lua_apply,
    .checkpoint = lua_checkpoint,
    .restore = lua_restore,
    .close = lua_close,
};

/* ---- the built-in module item ---- */

item *vm_lua_module_item(const item_key *key, vn_err *err) {
  item *it = item_new();
  char mem[32], gas[32], rt[128];
  snprintf(mem, sizeof mem, "%llu", (unsigned long long)VM_LUA_MEM_DEFAULT);
  snprintf(gas, sizeof gas, "%llu", (unsigned long long)VM_LUA_GAS_DEFAULT);
  snprintf(rt, sizeof rt, "vmnode-lua-ao/%s", vm_lua_runtime_sha256);
  const char *tags[][2] = {{"Data-Protocol", "ao"},
                           {"Variant", "ao.TN.1"},
                           {"Type", "Module"},
                           {"Module-Format", VM_LUA_FORMAT},
                           {"Input-Encoding", "JSON-1"},
                           {"Output-Encoding", "JSON-1"},
                           {"Memory-Limit", mem},
                           {"Compute-Limit", gas},
                           {"Runtime", rt},
                           {"Content-Type", "text/plain"},
                           {"Name", "vmnode-lua-ao"}};
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
    if (item_add_tag(it, tags[i][0], tags[i][1], err)) {
      item_free(it);
      return NULL;
    }
  static const char data[] =
      "vmnode's built-in AO process module: Lua 5.4 processes run by vmnode's own AO library "
      "(runtime/lua) in sandboxed workers. The Runtime tag names the library's SHA-256.\n";
  item_set_data(it, (const uint8_t *)data, sizeof data - 1);
  if (item_sign(it, key, err)) {
    item_free(it);
    return NULL;
  }
  return it;
}
