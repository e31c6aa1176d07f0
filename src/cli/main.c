/* main.c - the `vmnode` command: one binary for the daemon and the CLI.
 *
 * Verbs that need a node talk to it over HTTP (--node URL, default from the
 * config); verbs on files (keys, items, modules) work offline. This file only
 * parses arguments and prints; the work is in the library. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "common/enc.h"
#include "common/httpc.h"
#include "common/log.h"
#include "config/config.h"
#include "item/item.h"
#include "node/node.h"
#include "sandbox/worker.h"
#include "vm/vm.h"

#ifndef VMNODE_VERSION
#define VMNODE_VERSION "0.1.0"
#endif

/* ------------------------------------------------------------ arguments */

#define MAX_OPTS 256

typedef struct opts {
  const char *name[MAX_OPTS]; /* without leading dashes; NULL name = positional */
  const char *val[MAX_OPTS];
  int n;
} opts;

/* Flags that take no value. */
static int is_bool_flag(const char *f) {
  static const char *const B[] = {"help", "h", "json", "wait", "post", "quiet", "q", "version",
                                  "force", "on-boot", NULL};
  for (int i = 0; B[i]; i++)
    if (strcmp(B[i], f) == 0) return 1;
  return 0;
}

/* 43 base64url characters: an item or process id (never an option, even
 * when it starts with "--", as about one id in 4096 does). */
static int is_id43(const char *a) {
  size_t n = 0;
  for (; a[n]; n++)
    if (!(isalnum((unsigned char)a[n]) || a[n] == '-' || a[n] == '_')) return 0;
  return n == 43;
}

static int parse_opts(int argc, char **argv, opts *o) {
  o->n = 0;
  for (int i = 0; i < argc; i++) {
    if (o->n == MAX_OPTS) {
      fprintf(stderr, "vmnode: too many arguments\n");
      return -1;
    }
    const char *a = argv[i];
    /* Options are --name, --name=value and the short -h, -o, -q. Anything
     * else starting with '-' is positional: ids are base64url, and a
     * process or message id may well begin with '-'. "--" ends options. */
    if (strcmp(a, "--") == 0) {
      for (i++; i < argc && o->n < MAX_OPTS; i++) {
        o->name[o->n] = NULL;
        o->val[o->n++] = argv[i];
      }
      break;
    }
    int is_long = a[0] == '-' && a[1] == '-' && a[2] && !is_id43(a);
    int is_short = a[0] == '-' && a[1] && !a[2] && strchr("hoq", a[1]);
    if (is_long || is_short) {
      const char *f = a + (is_long ? 2 : 1);
      const char *eq = strchr(f, '=');
      if (eq) {
        o->name[o->n] = strndup(f, (size_t)(eq - f));
        o->val[o->n++] = eq + 1;
      } else if (is_bool_flag(f)) {
        o->name[o->n] = f;
        o->val[o->n++] = "true";
      } else {
        if (i + 1 >= argc) {
          fprintf(stderr, "vmnode: option --%s needs a value\n", f);
          return -1;
        }
        o->name[o->n] = f;
        o->val[o->n++] = argv[++i];
      }
    } else {
      o->name[o->n] = NULL;
      o->val[o->n++] = a;
    }
  }
  return 0;
}

static const char *opt(const opts *o, const char *name) {
  const char *v = NULL;
  for (int i = 0; i < o->n; i++)
    if (o->name[i] && strcmp(o->name[i], name) == 0) v = o->val[i];
  return v;
}

static int has(const opts *o, const char *name) {
  return opt(o, name) != NULL;
}

static const char *pos(const opts *o, int k) {
  for (int i = 0; i < o->n; i++)
    if (!o->name[i] && k-- == 0) return o->val[i];
  return NULL;
}

static int npos(const opts *o) {
  int k = 0;
  for (int i = 0; i < o->n; i++)
    if (!o->name[i]) k++;
  return k;
}

/* Reject options the verb does not know, so typos do not pass silently. */
static int check_opts(const opts *o, const char *verb, const char *const *known) {
  static const char *const common[] = {"config", "node", "help", "h", "json", NULL};
  for (int i = 0; i < o->n; i++) {
    if (!o->name[i]) continue;
    int ok = 0;
    for (int k = 0; common[k] && !ok; k++) ok = strcmp(common[k], o->name[i]) == 0;
    for (int k = 0; known && known[k] && !ok; k++) ok = strcmp(known[k], o->name[i]) == 0;
    if (!ok) {
      fprintf(stderr, "vmnode %s: unknown option --%s (see vmnode %s --help)\n", verb, o->name[i],
              verb);
      return -1;
    }
  }
  return 0;
}

static int die(const vn_err *e) {
  fprintf(stderr, "error: %s%s%s\n", e->code ? e->code : "", e->code ? ": " : "", e->msg);
  return 1;
}

/* ---------------------------------------------------------------- config */

/* The verb's config, freed at exit (verbs return from many places). */
static config *g_cfg;
static void free_cfg(void) {
  if (g_cfg) config_free(g_cfg);
  g_cfg = NULL;
}

static int load_config(const opts *o, config *c, int for_serve) {
  vn_err err;
  vn_err_clear(&err);
  config_defaults(c);
  if (!g_cfg) atexit(free_cfg);
  g_cfg = c;
  const char *path = opt(o, "config");
  int required = path != NULL;
  if (!path) path = getenv("VMNODE_CONFIG");
  if (path) required = 1;
  else path = "config.yaml";
  if (config_load_file(c, path, required, &err) || config_load_env(c, &err)) return die(&err);
  if (for_serve) {
    for (int i = 0; i < o->n; i++) {
      if (!o->name[i] || !strcmp(o->name[i], "config") || !strcmp(o->name[i], "node")) continue;
      const char *field = config_field_from_flag(o->name[i]);
      if (!field) {
        fprintf(stderr, "vmnode serve: unknown option --%s (see vmnode serve --help)\n",
                o->name[i]);
        return 1;
      }
      if (config_set(c, field, o->val[i], &err)) return die(&err);
    }
  } else {
    const char *dd = opt(o, "data-dir");
    if (dd && config_set(c, "dataDir", dd, &err)) return die(&err);
  }
  if (config_validate(c, &err)) return die(&err);
  return 0;
}

static const char *node_url(const opts *o, const config *c) {
  const char *u = opt(o, "node");
  if (!u) u = getenv("VMNODE_NODE");
  if (!u) u = config_base_url(c);
  return u;
}

/* ------------------------------------------------------------- helpers */

static uint8_t *read_all(const char *path, size_t *len, vn_err *err) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    vn_errf(err, "file", "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 65536, n = 0;
  uint8_t *b = malloc(cap);
  for (;;) {
    if (n == cap) b = realloc(b, cap *= 2);
    size_t r = fread(b + n, 1, cap - n, f);
    n += r;
    if (r == 0) break;
  }
  if (f != stdin) fclose(f);
  *len = n;
  return b;
}

static int write_all(const char *path, const void *buf, size_t len, vn_err *err) {
  FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
  if (!f) return vn_errf(err, "file", "cannot write %s: %s", path, strerror(errno));
  int ok = fwrite(buf, 1, len, f) == len;
  if (f != stdout) ok = (fclose(f) == 0) && ok;
  else fflush(f);
  return ok ? 0 : vn_errf(err, "file", "write to %s failed", path);
}

/* Load an item from a binary or JSON file. */
static item *load_item_file(const char *path, vn_err *err) {
  size_t len;
  uint8_t *b = read_all(path, &len, err);
  if (!b) return NULL;
  item *it = NULL;
  size_t i = 0;
  while (i < len && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r')) i++;
  if (i < len && b[i] == '{') {
    json_error_t je;
    json_t *j = json_loadb((const char *)b, len, 0, &je);
    if (!j) vn_errf(err, "bad_json", "%s: line %d: %s", path, je.line, je.text);
    else it = item_from_json(j, err);
    json_decref(j);
  } else {
    it = item_decode(b, len, err);
  }
  free(b);
  return it;
}

/* The signing key of a CLI user: --prvkey, --keyfile, or the wallet file
 * (~/.config/vmnode/wallet.key, created on first use). */
static item_key *user_key(const opts *o, vn_err *err) {
  const char *hex = opt(o, "prvkey");
  if (!hex) hex = getenv("VMNODE_WALLET_KEY");
  if (hex) return item_key_from_hex(hex, err);
  const char *kf = opt(o, "keyfile");
  if (kf) return item_key_from_jwk_file(kf, err);
  char dir[4096], path[4200];
  const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/vmnode", xdg);
  else snprintf(dir, sizeof dir, "%s/.config/vmnode", home ? home : ".");
  snprintf(path, sizeof path, "%s/wallet.key", dir);
  FILE *f = fopen(path, "r");
  if (f) {
    char line[128] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n ")] = 0;
    item_key *k = item_key_from_hex(line, err);
    if (!k) vn_err_wrap(err, "wallet %s", path);
    return k;
  }
  item_key *k = item_key_generate(err);
  char kh[67];
  if (!k || item_key_to_hex(k, kh)) return k;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0700);
      *p = '/';
    }
  mkdir(tmp, 0700);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) {
    dprintf(fd, "%s\n", kh);
    close(fd);
    fprintf(stderr, "created wallet %s (address %s)\n", path, item_key_address(k));
  }
  return k;
}

/* A random 32-byte anchor, so two otherwise equal items (same signer, tags
 * and data: deterministic signatures) still get different ids. */
static void random_anchor(item *it) {
  uint8_t a[32];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(a, 1, sizeof a, f) != sizeof a) {
    if (f) fclose(f);
    return;
  }
  fclose(f);
  item_set_anchor(it, a);
}

/* Add --tag Name=Value options to an item. */
static int add_tag_opts(const opts *o, item *it, vn_err *err) {
  for (int i = 0; i < o->n; i++) {
    if (!o->name[i] || strcmp(o->name[i], "tag")) continue;
    const char *eq = strchr(o->val[i], '=');
    if (!eq || eq == o->val[i])
      return vn_errf(err, "bad_tag", "--tag wants Name=Value, got '%s'", o->val[i]);
    char *name = strndup(o->val[i], (size_t)(eq - o->val[i]));
    int r = item_add_tag(it, name, eq + 1, err);
    free(name);
    if (r) return -1;
  }
  return 0;
}

/* A default tag (Data-Protocol, Variant) unless the user gives that tag
 * with --tag: then theirs is used (added later by add_tag_opts). */
static int def_tag(const opts *o, item *it, const char *name, const char *value, vn_err *err) {
  size_t nl = strlen(name);
  for (int i = 0; i < o->n; i++)
    if (o->name[i] && !strcmp(o->name[i], "tag") && !strncmp(o->val[i], name, nl) &&
        o->val[i][nl] == '=')
      return 0;
  return item_add_tag(it, name, value, err);
}

static int set_data_opts(const opts *o, item *it, vn_err *err) {
  const char *df = opt(o, "data-file");
  const char *d = opt(o, "data");
  if (df) {
    size_t len;
    uint8_t *b = read_all(df, &len, err);
    if (!b) return -1;
    item_set_data(it, b, len);
    free(b);
  } else if (d) {
    item_set_data(it, (const uint8_t *)d, strlen(d));
  }
  return 0;
}

static int print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
  puts(s ? s : "null");
  free(s);
  return 0;
}

/* HTTP to the node; prints a clear error on failure. Returns the status or -1. */
static long http(const char *method, const char *base, const char *path, const char *ctype,
                 const uint8_t *body, size_t len, httpc_resp *resp, vn_err *err) {
  char url[8192];
  snprintf(url, sizeof url, "%s%s", base, path);
  memset(resp, 0, sizeof *resp);
  if (httpc_request(method, url, ctype, body, len, resp, 120000, err)) return -1;
  return resp->status;
}

/* Print a node error body {"error","message"} and return 1. */
static int node_error(httpc_resp *r) {
  json_error_t je;
  json_t *j = r->body ? json_loadb(r->body, r->len, 0, &je) : NULL;
  const char *code = json_string_value(json_object_get(j, "error"));
  const char *msg = json_string_value(json_object_get(j, "message"));
  fprintf(stderr, "error: node answered %ld: %s%s%s\n", r->status, code ? code : (r->body ? r->body : ""),
          msg ? ": " : "", msg ? msg : "");
  json_decref(j);
  return 1;
}

/* --------------------------------------------------------------- serve */

static volatile sig_atomic_t g_stop;
static void on_signal(int s) {
  (void)s;
  g_stop = 1;
}

static const char *USAGE_SERVE =
    "usage: vmnode serve [--config FILE] [--<field> VALUE]...\n"
    "Run the node: HTTP API on the configured port, data under dataDir.\n"
    "Every config field can be given as a flag in kebab-case, e.g.\n"
    "  --port 127.0.0.1:8080   --data-dir ./vmnode-data   --prv-key HEX\n"
    "  --keyfile-path JWK      --node-name NAME           --node-url URL\n"
    "  --max-item-size 10MiB   --result-wait-ms 30000     --log-format json\n"
    "  --lua-timeout-ms 10000  --lua-memory-limit 256MiB  --vm-idle-ms 600000\n"
    "Defaults are embedded (see docs/config.md); a config.yaml in the current\n"
    "directory is read when present; VMNODE_<FIELD> variables override it.\n";

static int cmd_serve(const opts *o) {
  if (has(o, "help") || has(o, "h")) return fputs(USAGE_SERVE, stdout), 0;
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 1)) return 1;
  vn_err err;
  vn_err_clear(&err);
  if (log_init(c.log_format, c.log_level, stderr, &err)) return die(&err);
  /* The Lua runtime's zygote is started before any thread: every Lua
   * process is a fork of it (docs/worker.md). A failure is reported and Lua
   * spawns then fail with that reason; the rest of the node works. */
  vm_lua_cfg lc = {.ns = SBX_NS_ALL,
                   .timeout_ms = c.lua_timeout_ms,
                   .mem_cap = (uint64_t)c.lua_memory_limit};
  if (vm_lua_init(&lc, &err)) {
    char qb[600];
    log_error("lua.unavailable", "error=%s msg=%s", err.code ? err.code : "",
              log_quote(err.msg, qb, sizeof qb));
    vn_err_clear(&err);
  }
  node *n = node_open(&c, &err);
  if (!n) return die(&err);
  api *a = api_start(n, &c, &err);
  if (!a) {
    node_close(n);
    return die(&err);
  }
  log_info("serve.listen", "address=%s url=%s port=%d data_dir=%s", node_address(n),
           config_base_url(&c), api_port(a), c.data_dir);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  while (!g_stop) pause();
  log_info("serve.stop", NULL);
  api_stop(a);
  node_close(n);
  vm_lua_shutdown();
  return 0;
}

/* ----------------------------------------------------------------- key */

static int cmd_key(const opts *o) {
  const char *sub = pos(o, 0);
  if (!sub || has(o, "help") || has(o, "h")) {
    puts("usage: vmnode key generate [-o FILE]\n"
         "       vmnode key address (--prvkey HEX | --keyfile JWK | FILE)\n"
         "generate: a new secp256k1 key; prints the address, writes the hex key to\n"
         "FILE (mode 0600) or prints it. address: the address of a key.");
    return sub ? 0 : 2;
  }
  static const char *const known[] = {"o", "out", "prvkey", "keyfile", NULL};
  if (check_opts(o, "key", known)) return 2;
  vn_err err;
  vn_err_clear(&err);
  if (strcmp(sub, "generate") == 0) {
    item_key *k = item_key_generate(&err);
    char hex[67];
    if (!k || item_key_to_hex(k, hex)) return die(&err);
    const char *out = opt(o, "o") ? opt(o, "o") : opt(o, "out");
    if (out) {
      int fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
      if (fd < 0) {
        fprintf(stderr, "error: cannot create %s: %s\n", out, strerror(errno));
        return 1;
      }
      dprintf(fd, "%s\n", hex);
      close(fd);
      printf("%s\n", item_key_address(k));
    } else {
      printf("address %s\nprvKey  %s\n", item_key_address(k), hex);
    }
    item_key_free(k);
    return 0;
  }
  if (strcmp(sub, "address") == 0) {
    item_key *k = NULL;
    const char *file = pos(o, 1);
    if (has(o, "prvkey") || has(o, "keyfile")) k = user_key(o, &err);
    else if (file) {
      size_t len;
      uint8_t *b = read_all(file, &len, &err);
      if (b) {
        char *s = strndup((const char *)b, len);
        char *p = s;
        while (*p == ' ' || *p == '\n') p++;
        if (*p == '{') k = item_key_from_jwk_file(file, &err);
        else {
          p[strcspn(p, "\r\n ")] = 0;
          k = item_key_from_hex(p, &err);
        }
        free(s);
        free(b);
      }
    } else {
      fprintf(stderr, "vmnode key address: give --prvkey HEX, --keyfile JWK or a key FILE\n");
      return 2;
    }
    if (!k) return die(&err);
    printf("%s\n", item_key_address(k));
    item_key_free(k);
    return 0;
  }
  fprintf(stderr, "vmnode key: unknown subcommand '%s' (generate, address)\n", sub);
  return 2;
}

/* ---------------------------------------------------------------- item */

static const char *USAGE_ITEM =
    "usage: vmnode item sign (--prvkey HEX | --keyfile JWK) [--target ID] [--anchor B64URL]\n"
    "                        [--tag Name=Value]... [--data TEXT | --data-file FILE] -o OUT [--json]\n"
    "       vmnode item verify [--json] FILE...\n"
    "       vmnode item show FILE\n"
    "sign: build and sign an ANS-104 item (binary, or the JSON form with --json).\n"
    "verify: check items (binary or JSON form); exit status 1 if any is invalid;\n"
    "        --json prints one JSON report per file.\n"
    "show: print an item in its JSON form with the signer's address.\n";

static int cmd_item(const opts *o) {
  const char *sub = pos(o, 0);
  if (!sub || has(o, "help") || has(o, "h")) {
    fputs(USAGE_ITEM, sub ? stdout : stderr);
    return sub ? 0 : 2;
  }
  static const char *const known[] = {"prvkey", "keyfile", "target", "anchor", "tag", "data",
                                      "data-file", "o", "out", NULL};
  if (check_opts(o, "item", known)) return 2;
  vn_err err;
  vn_err_clear(&err);
  if (strcmp(sub, "sign") == 0) {
    const char *out = opt(o, "o") ? opt(o, "o") : opt(o, "out");
    if (!out) {
      fprintf(stderr, "vmnode item sign: -o OUT is required (- for stdout)\n");
      return 2;
    }
    if (!has(o, "prvkey") && !has(o, "keyfile")) {
      fprintf(stderr, "vmnode item sign: give --prvkey HEX or --keyfile JWK\n");
      return 2;
    }
    item_key *k = user_key(o, &err);
    if (!k) return die(&err);
    item *it = item_new();
    int rc = 0;
    const char *t = opt(o, "target"), *an = opt(o, "anchor");
    if (t && item_set_target_b64(it, t, &err)) rc = 1;
    if (!rc && an) {
      uint8_t ab[32];
      if (b64url_decode(an, strlen(an), ab, 32) == 32) item_set_anchor(it, ab);
      else if (strlen(an) == 32) item_set_anchor(it, (const uint8_t *)an);
      else rc = 1, vn_errf(&err, "bad_anchor", "--anchor wants 32 bytes (base64url or 32 chars)");
    }
    if (!rc && (add_tag_opts(o, it, &err) || set_data_opts(o, it, &err) || item_sign(it, k, &err)))
      rc = 1;
    if (!rc) {
      if (has(o, "json")) {
        json_t *j = item_to_json(it);
        char *s = json_dumps(j, JSON_INDENT(2));
        size_t sl = strlen(s);
        s = realloc(s, sl + 2);
        s[sl] = '\n';
        s[sl + 1] = 0;
        if (write_all(out, s, sl + 1, &err)) rc = 1;
        free(s);
        json_decref(j);
      } else {
        size_t len;
        uint8_t *b = item_encode(it, &len, &err);
        if (!b || write_all(out, b, len, &err)) rc = 1;
        free(b);
      }
      if (!rc && strcmp(out, "-")) printf("%s\n", it->id);
    }
    item_free(it);
    item_key_free(k);
    return rc ? die(&err) : 0;
  }
  if (strcmp(sub, "verify") == 0) {
    if (npos(o) < 2) {
      fprintf(stderr, "vmnode item verify: give one or more FILEs\n");
      return 2;
    }
    int bad = 0;
    for (int i = 1; i < npos(o); i++) {
      const char *f = pos(o, i);
      vn_err_clear(&err);
      item *it = load_item_file(f, &err);
      int ok = it && item_verify(it, &err) == 0;
      char addr[ITEM_ADDR_MAX] = "";
      if (it) item_owner_address(it, addr);
      if (has(o, "json")) {
        json_t *j = ok ? json_pack("{s:s,s:b,s:s,s:s,s:i}", "file", f, "valid", 1, "id", it->id,
                                   "owner", addr, "signatureType", it->sig_type)
                       : json_pack("{s:s,s:b,s:s,s:s}", "file", f, "valid", 0, "error",
                                   err.code ? err.code : "invalid", "message", err.msg);
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(j);
      } else if (ok) {
        printf("OK   %s id=%s owner=%s\n", f, it->id, addr);
      } else {
        printf("FAIL %s %s: %s\n", f, err.code ? err.code : "invalid", err.msg);
      }
      bad += !ok;
      item_free(it);
    }
    return bad ? 1 : 0;
  }
  if (strcmp(sub, "show") == 0) {
    const char *f = pos(o, 1);
    if (!f) {
      fprintf(stderr, "vmnode item show: give a FILE\n");
      return 2;
    }
    item *it = load_item_file(f, &err);
    if (!it) return die(&err);
    json_t *j = item_to_json(it);
    char addr[ITEM_ADDR_MAX];
    item_owner_address(it, addr);
    json_object_set_new(j, "ownerAddress", json_string(addr));
    vn_err verr;
    vn_err_clear(&verr);
    json_object_set_new(j, "valid", json_boolean(item_verify(it, &verr) == 0));
    print_json(j);
    json_decref(j);
    item_free(it);
    return 0;
  }
  fprintf(stderr, "vmnode item: unknown subcommand '%s' (sign, verify, show)\n", sub);
  return 2;
}

/* -------------------------------------------------------------- module */

static int post_item(const opts *o, const config *c, const uint8_t *raw, size_t len, json_t **out) {
  vn_err err;
  vn_err_clear(&err);
  httpc_resp r;
  long st = http("POST", node_url(o, c), "/", "application/octet-stream", raw, len, &r, &err);
  if (st < 0) return die(&err);
  int rc = 0;
  if (st == 308) {
    fprintf(stderr, "error: this item belongs to another node: %s\n",
            r.location ? r.location : "(no Location)");
    rc = 1;
  } else if (st != 200) {
    rc = node_error(&r);
  } else if (out) {
    json_error_t je;
    *out = json_loadb(r.body, r.len, 0, &je);
  }
  httpc_resp_free(&r);
  return rc;
}

static int cmd_module(const opts *o) {
  const char *sub = pos(o, 0);
  if (!sub || has(o, "help") || has(o, "h")) {
    puts("usage: vmnode module create --format FORMAT [--tag Name=Value]... [--data TEXT |\n"
         "                            --data-file FILE] [--prvkey HEX | --keyfile JWK]\n"
         "                            [-o DIR] [--post]\n"
         "       vmnode module ls\n"
         "create: sign a Type=Module item and write DIR/mod-<id>.json (DIR default: mod),\n"
         "        like hymx; the node loads mod/ at start. --post also sends it to the node.\n"
         "ls: the module formats the node can run and the modules it knows.");
    return sub ? 0 : 2;
  }
  static const char *const known[] = {"format", "tag", "data", "data-file", "prvkey", "keyfile",
                                      "o", "out", "post", NULL};
  if (check_opts(o, "module", known)) return 2;
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 0)) return 1;
  vn_err err;
  vn_err_clear(&err);
  if (strcmp(sub, "create") == 0) {
    const char *fmt = opt(o, "format");
    if (!fmt) {
      fprintf(stderr, "vmnode module create: --format is required (e.g. vmnode.echo.v1)\n");
      return 2;
    }
    item_key *k = user_key(o, &err);
    if (!k) return die(&err);
    item *it = item_new();
    int rc = def_tag(o, it, "Data-Protocol", "hymx", &err) ||
             def_tag(o, it, "Variant", "v0.1.0", &err) ||
             item_add_tag(it, "Type", "Module", &err) ||
             item_add_tag(it, "Module-Format", fmt, &err) || add_tag_opts(o, it, &err) ||
             set_data_opts(o, it, &err) || item_tags_unique(it, &err) || item_sign(it, k, &err);
    if (rc) return die(&err);
    const char *dir = opt(o, "o") ? opt(o, "o") : (opt(o, "out") ? opt(o, "out") : "mod");
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/mod-%s.json", dir, it->id);
    json_t *j = item_to_json(it);
    if (json_dump_file(j, path, JSON_INDENT(2))) {
      fprintf(stderr, "error: cannot write %s\n", path);
      return 1;
    }
    json_decref(j);
    printf("%s\n", it->id);
    fprintf(stderr, "wrote %s\n", path);
    if (has(o, "post")) {
      size_t len;
      uint8_t *raw = item_encode(it, &len, &err);
      rc = post_item(o, &c, raw, len, NULL);
      free(raw);
    }
    item_free(it);
    item_key_free(k);
    return rc;
  }
  if (strcmp(sub, "ls") == 0) {
    httpc_resp r;
    long st = http("GET", node_url(o, &c), "/modules", NULL, NULL, 0, &r, &err);
    if (st < 0) return die(&err);
    int rc = st == 200 ? (fwrite(r.body, 1, r.len, stdout), putchar('\n'), 0) : node_error(&r);
    httpc_resp_free(&r);
    return rc;
  }
  fprintf(stderr, "vmnode module: unknown subcommand '%s' (create, ls)\n", sub);
  return 2;
}

/* ------------------------------------------------- spawn / send / query */

/* GET /info: the node's address (returned) and, when defmod is not NULL,
 * its Default-Module (malloc'd, NULL when the node has none). */
static char *fetch_info(const opts *o, const config *c, char **defmod, vn_err *err);
static char *fetch_info_address(const opts *o, const config *c, vn_err *err) {
  return fetch_info(o, c, NULL, err);
}

static char *fetch_info(const opts *o, const config *c, char **defmod, vn_err *err) {
  httpc_resp r;
  long st = http("GET", node_url(o, c), "/info", NULL, NULL, 0, &r, err);
  if (st != 200) {
    if (st > 0) vn_errf(err, "node_error", "GET /info answered %ld", st);
    httpc_resp_free(&r);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadb(r.body, r.len, 0, &je);
  httpc_resp_free(&r);
  const char *a = json_string_value(json_object_get(json_object_get(j, "Node"), "Acc-Id"));
  char *res = a ? strdup(a) : NULL;
  if (defmod) {
    const char *m = json_string_value(json_object_get(j, "Default-Module"));
    *defmod = m && *m ? strdup(m) : NULL;
  }
  json_decref(j);
  if (!res) vn_errf(err, "node_error", "GET /info has no Node.Acc-Id");
  return res;
}

static int get_and_print(const opts *o, const config *c, const char *path) {
  vn_err err;
  vn_err_clear(&err);
  httpc_resp r;
  long st = http("GET", node_url(o, c), path, NULL, NULL, 0, &r, &err);
  if (st < 0) return die(&err);
  int rc = 0;
  if (st != 200) rc = node_error(&r);
  else {
    json_error_t je;
    json_t *j = json_loadb(r.body, r.len, JSON_DECODE_ANY, &je);
    if (j) print_json(j);
    else fwrite(r.body, 1, r.len, stdout);
    json_decref(j);
  }
  httpc_resp_free(&r);
  return rc;
}

/* The common end of spawn and send: add the user's --tag/--data options to
 * an item that already has its own tags, check, sign with the user's key
 * and post it. Returns 0 when the node accepted it (it->id is then the id),
 * else the exit status, the error already printed. `it` stays the
 * caller's. */
static int sign_and_post(const opts *o, const config *c, item *it) {
  vn_err err;
  vn_err_clear(&err);
  item_key *k = user_key(o, &err);
  if (!k) return die(&err);
  int bad = add_tag_opts(o, it, &err) || set_data_opts(o, it, &err) ||
            item_tags_unique(it, &err) || item_sign(it, k, &err);
  item_key_free(k);
  if (bad) return die(&err);
  size_t len;
  uint8_t *raw = item_encode(it, &len, &err);
  if (!raw) return die(&err);
  int rc = post_item(o, c, raw, len, NULL);
  free(raw);
  return rc;
}

static const char *USAGE_SPAWN =
    "usage: vmnode spawn [--module ID] [--name NAME] [--tag Name=Value]... [--data TEXT |\n"
    "                    --data-file FILE] [--on-boot] [--scheduler ADDR]\n"
    "                    [--prvkey HEX | --keyfile JWK]\n"
    "Sign a Type=Process item and send it to the node; prints the process id.\n"
    "The module defaults to the node's built-in Lua module (Default-Module in\n"
    "GET /info), the scheduler to the node's own address. --on-boot adds\n"
    "On-Boot=Data: the process evaluates its data as Lua when it starts.\n";

static int cmd_spawn(const opts *o) {
  if (has(o, "help") || has(o, "h")) return fputs(USAGE_SPAWN, stdout), 0;
  static const char *const known[] = {"module", "name", "tag", "data", "data-file", "scheduler",
                                      "on-boot", "prvkey", "keyfile", NULL};
  if (check_opts(o, "spawn", known)) return 2;
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 0)) return 1;
  vn_err err;
  vn_err_clear(&err);
  char *defmod = NULL;
  char *sched = NULL;
  if (!opt(o, "scheduler") || !opt(o, "module")) {
    sched = fetch_info(o, &c, &defmod, &err);
    if (!sched) return die(&err);
  }
  if (opt(o, "scheduler")) {
    free(sched);
    sched = strdup(opt(o, "scheduler"));
  }
  const char *mod = opt(o, "module") ? opt(o, "module") : defmod;
  if (!mod) {
    free(sched);
    fprintf(stderr, "vmnode spawn: the node has no Default-Module: give --module ID "
                    "(see vmnode module ls)\n");
    return 2;
  }
  item *it = item_new();
  random_anchor(it);
  int rc = def_tag(o, it, "Data-Protocol", "hymx", &err) ||
           def_tag(o, it, "Variant", "v0.1.0", &err) ||
           item_add_tag(it, "Type", "Process", &err) || item_add_tag(it, "Module", mod, &err) ||
           item_add_tag(it, "Scheduler", sched, &err) ||
           (has(o, "name") && item_add_tag(it, "Name", opt(o, "name"), &err)) ||
           (has(o, "on-boot") && item_add_tag(it, "On-Boot", "Data", &err));
  free(sched);
  free(defmod);
  rc = rc ? die(&err) : sign_and_post(o, &c, it);
  if (!rc) printf("%s\n", it->id);
  item_free(it);
  return rc;
}

static const char *USAGE_SEND =
    "usage: vmnode send PID [--action ACTION] [--data TEXT | --data-file FILE]\n"
    "                   [--tag Name=Value]... [--wait] [--prvkey HEX | --keyfile JWK]\n"
    "Sign a Type=Message item for process PID and send it; prints the message id.\n"
    "--wait: also wait for the result and print it.\n";

static int cmd_send(const opts *o) {
  if (has(o, "help") || has(o, "h")) return fputs(USAGE_SEND, stdout), 0;
  static const char *const known[] = {"action", "tag", "data", "data-file", "wait", "prvkey",
                                      "keyfile", NULL};
  if (check_opts(o, "send", known)) return 2;
  const char *pid = pos(o, 0);
  if (!pid) {
    fputs(USAGE_SEND, stderr);
    return 2;
  }
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 0)) return 1;
  vn_err err;
  vn_err_clear(&err);
  item *it = item_new();
  random_anchor(it);
  int rc = item_set_target_b64(it, pid, &err) ||
           def_tag(o, it, "Data-Protocol", "hymx", &err) ||
           def_tag(o, it, "Variant", "v0.1.0", &err) ||
           item_add_tag(it, "Type", "Message", &err) ||
           (has(o, "action") && item_add_tag(it, "Action", opt(o, "action"), &err));
  rc = rc ? die(&err) : sign_and_post(o, &c, it);
  if (!rc) {
    printf("%s\n", it->id);
    if (has(o, "wait")) {
      char path[256];
      snprintf(path, sizeof path, "/result/%s?process-id=%s", it->id, pid);
      rc = get_and_print(o, &c, path);
    }
  }
  item_free(it);
  return rc;
}

static int cmd_simple_get(const opts *o, const char *verb) {
  if (has(o, "help") || has(o, "h")) {
    if (!strcmp(verb, "result"))
      puts("usage: vmnode result MSGID [--pid PID]\nPrint a message's result (waits for it).");
    else if (!strcmp(verb, "results"))
      puts("usage: vmnode results PID [--limit N] [--sort ASC|DESC] [--from CURSOR] [--to CURSOR]\n"
           "Print a page of a process's results.");
    else if (!strcmp(verb, "info"))
      puts("usage: vmnode info\nPrint the node's /info document.");
    else if (!strcmp(verb, "ps"))
      puts("usage: vmnode ps\nList the processes hosted by the node with their latest nonce.");
    return 0;
  }
  static const char *const known[] = {"pid", "limit", "sort", "from", "to", NULL};
  if (check_opts(o, verb, known)) return 2;
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 0)) return 1;
  char path[1024];
  if (!strcmp(verb, "info")) return get_and_print(o, &c, "/info");
  const char *a = pos(o, 0);
  if (!strcmp(verb, "result")) {
    if (!a) return fprintf(stderr, "vmnode result: give a message id\n"), 2;
    if (has(o, "pid")) snprintf(path, sizeof path, "/result/%s/%s", opt(o, "pid"), a);
    else snprintf(path, sizeof path, "/result/%s", a);
    return get_and_print(o, &c, path);
  }
  if (!strcmp(verb, "results")) {
    if (!a) return fprintf(stderr, "vmnode results: give a process id\n"), 2;
    int k = snprintf(path, sizeof path, "/results/%s?limit=%s&sort=%s", a,
                     opt(o, "limit") ? opt(o, "limit") : "25", opt(o, "sort") ? opt(o, "sort") : "ASC");
    if (has(o, "from")) k += snprintf(path + k, sizeof path - (size_t)k, "&from=%s", opt(o, "from"));
    if (has(o, "to")) snprintf(path + k, sizeof path - (size_t)k, "&to=%s", opt(o, "to"));
    return get_and_print(o, &c, path);
  }
  /* ps */
  vn_err err;
  vn_err_clear(&err);
  char *addr = fetch_info_address(o, &c, &err);
  if (!addr) return die(&err);
  snprintf(path, sizeof path, "/processes/%s", addr);
  free(addr);
  httpc_resp r;
  long st = http("GET", node_url(o, &c), path, NULL, NULL, 0, &r, &err);
  if (st < 0) return die(&err);
  if (st != 200) {
    int rc = node_error(&r);
    httpc_resp_free(&r);
    return rc;
  }
  json_error_t je;
  json_t *j = json_loadb(r.body, r.len, 0, &je);
  httpc_resp_free(&r);
  if (has(o, "json")) return print_json(j), json_decref(j), 0;
  printf("%-43s  %8s\n", "PROCESS", "NONCE");
  size_t i;
  json_t *p;
  json_array_foreach(j, i, p) {
    const char *pid = json_string_value(p);
    if (!pid) pid = json_string_value(json_object_get(p, "id"));
    if (!pid) continue;
    snprintf(path, sizeof path, "/nonce/%s", pid);
    long nonce = -1;
    if (http("GET", node_url(o, &c), path, NULL, NULL, 0, &r, &err) == 200 && r.body)
      nonce = strtol(r.body, NULL, 10);
    httpc_resp_free(&r);
    printf("%-43s  %8ld\n", pid, nonce);
  }
  json_decref(j);
  return 0;
}

/* ---------------------------------------------------------- verify-log */

typedef struct http_fetch {
  const char *base;
  const char *pid;
} http_fetch;

static item *fetch_item_json(const char *base, const char *path, int *notfound, vn_err *err) {
  httpc_resp r;
  long st = http("GET", base, path, NULL, NULL, 0, &r, err);
  item *it = NULL;
  *notfound = 0;
  if (st == 404) *notfound = 1;
  else if (st == 200) {
    json_error_t je;
    json_t *j = json_loadb(r.body, r.len, 0, &je);
    if (j) it = item_from_json(j, err);
    else vn_errf(err, "bad_json", "GET %s: %s", path, je.text);
    json_decref(j);
  } else if (st > 0) {
    vn_errf(err, "node_error", "GET %s answered %ld", path, st);
  }
  httpc_resp_free(&r);
  return it;
}

static int http_fetch_fn(void *ctx, int64_t nonce, item **a, item **m, vn_err *err) {
  http_fetch *f = ctx;
  char path[256];
  int nf = 0;
  snprintf(path, sizeof path, "/assignmentByNonce/%s/%" PRId64, f->pid, nonce);
  *a = fetch_item_json(f->base, path, &nf, err);
  if (!*a) return nf ? 0 : -1;
  snprintf(path, sizeof path, "/messageByNonce/%s/%" PRId64, f->pid, nonce);
  *m = fetch_item_json(f->base, path, &nf, err);
  if (!*m) {
    item_free(*a);
    *a = NULL;
    if (nf) return vn_errf(err, "log_incomplete", "nonce %" PRId64 " has an assignment but no message", nonce);
    return -1;
  }
  return 1;
}

static int cmd_verify_log(const opts *o) {
  if (has(o, "help") || has(o, "h") || !pos(o, 0)) {
    puts("usage: vmnode verify-log PID [--scheduler ADDR] [--data-dir DIR]\n"
         "Check a process's log as a third party would: nonces 0..N without gaps, every\n"
         "assignment signed by the scheduler, the Hash-Chain linking each assignment to\n"
         "the one before, every message validly signed and the one assigned.\n"
         "Reads the log over HTTP from --node (default), or offline from --data-dir.\n"
         "Exit status 0 when the log verifies, 1 when it does not.");
    return pos(o, 0) ? 0 : 2;
  }
  static const char *const known[] = {"scheduler", "data-dir", NULL};
  if (check_opts(o, "verify-log", known)) return 2;
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 0)) return 1;
  vn_err err;
  vn_err_clear(&err);
  const char *pid = pos(o, 0);
  vlog_report rep;
  int r;
  char *sched = opt(o, "scheduler") ? strdup(opt(o, "scheduler")) : NULL;
  if (has(o, "data-dir")) {
    char path[4200];
    snprintf(path, sizeof path, "%s/vmnode.db", c.data_dir);
    if (access(path, R_OK)) {
      fprintf(stderr, "error: no node data in %s (%s)\n", c.data_dir, strerror(errno));
      return 1;
    }
    store *st = store_open(path, 0, &err);
    if (!st) return die(&err);
    r = node_verify_log_store(st, pid, sched, &rep, &err);
    store_close(st);
  } else {
    if (!sched) sched = fetch_info_address(o, &c, &err);
    if (!sched) return die(&err);
    http_fetch f = {.base = node_url(o, &c), .pid = pid};
    char path[256];
    snprintf(path, sizeof path, "/nonce/%s", pid);
    httpc_resp hr;
    int64_t last = -1;
    if (http("GET", f.base, path, NULL, NULL, 0, &hr, &err) == 200 && hr.body)
      last = strtoll(hr.body, NULL, 10);
    httpc_resp_free(&hr);
    r = node_verify_log_upto(pid, sched, last, http_fetch_fn, &f, &rep, &err);
  }
  free(sched);
  if (r < 0) return die(&err);
  if (has(o, "json")) {
    json_t *j = json_pack("{s:s,s:b,s:I,s:I,s:s}", "pid", pid, "valid", r == 0, "checked",
                          (json_int_t)rep.checked, "bad_nonce", (json_int_t)rep.bad_nonce, "reason",
                          rep.reason);
    print_json(j);
    json_decref(j);
  } else if (r == 0) {
    printf("OK %s: %" PRId64 " assignments (nonces 0..%" PRId64 "), hash chain intact\n", pid,
           rep.checked, rep.checked - 1);
  } else {
    printf("FAIL %s at nonce %" PRId64 ": %s\n", pid, rep.bad_nonce, rep.reason);
  }
  return r == 0 ? 0 : 1;
}

/* -------------------------------------------------------------- config */

static int cmd_config(const opts *o) {
  if (has(o, "help") || has(o, "h")) {
    puts("usage: vmnode config [--config FILE] [--<field> VALUE]...\n"
         "Print the effective configuration (defaults < config.yaml < VMNODE_* < flags)\n"
         "as YAML, with the key redacted. Exit status 1 names the first bad field.");
    return 0;
  }
  static config c; /* static: freed at exit by free_cfg */
  if (load_config(o, &c, 1)) return 1;
  config_dump(&c, stdout);
  return 0;
}

/* ---------------------------------------------------------------- main */

static const char *USAGE =
    "vmnode " VMNODE_VERSION " - a node for verifiable AO / HyMatrix processes\n"
    "\n"
    "usage: vmnode VERB [options]     (vmnode VERB --help for each)\n"
    "\n"
    "node:\n"
    "  serve              run the node (HTTP API, scheduler, VMs)\n"
    "  info               the node's /info document\n"
    "  config             print the effective configuration\n"
    "  ps                 processes hosted by the node\n"
    "processes:\n"
    "  spawn              sign and send a Process item\n"
    "  send PID           sign and send a Message item\n"
    "  result MSGID       a message's result\n"
    "  results PID        a page of a process's results\n"
    "  verify-log PID     check a process's signed, hash-chained log\n"
    "files (offline):\n"
    "  key generate|address     secp256k1 keys and addresses\n"
    "  item sign|verify|show    ANS-104 data items\n"
    "  module create|ls         module items (mod/mod-<id>.json)\n"
    "  version                  print the version\n"
    "\n"
    "common options: --config FILE (default ./config.yaml when present),\n"
    "                --node URL (default from the config: http://127.0.0.1:8080)\n"
    "signing options: --prvkey HEX | --keyfile JWK (default wallet:\n"
    "                ~/.config/vmnode/wallet.key, created on first use)\n";

int main(int argc, char **argv) {
  /* Started as the Lua runtime's zygote: run it and never come back. */
  static const sbx_hooks hooks = {.open_libs = vm_lua_open_host};
  sbx_zygote_main(argc, argv, &hooks);
  if (argc < 2) {
    fputs(USAGE, stderr);
    return 2;
  }
  const char *verb = argv[1];
  if (!strcmp(verb, "help") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (!strcmp(verb, "version") || !strcmp(verb, "--version")) {
    puts("vmnode " VMNODE_VERSION);
    return 0;
  }
  opts o;
  if (parse_opts(argc - 2, argv + 2, &o)) return 2;
  signal(SIGPIPE, SIG_IGN);
  if (!strcmp(verb, "serve")) return cmd_serve(&o);
  if (!strcmp(verb, "key")) return cmd_key(&o);
  if (!strcmp(verb, "config")) return cmd_config(&o);
  if (!strcmp(verb, "item")) return cmd_item(&o);
  if (!strcmp(verb, "module")) return cmd_module(&o);
  if (!strcmp(verb, "spawn")) return cmd_spawn(&o);
  if (!strcmp(verb, "send")) return cmd_send(&o);
  if (!strcmp(verb, "verify-log")) return cmd_verify_log(&o);
  if (!strcmp(verb, "result") || !strcmp(verb, "results") || !strcmp(verb, "info") ||
      !strcmp(verb, "ps"))
    return cmd_simple_get(&o, verb);
  fprintf(stderr, "vmnode: unknown verb '%s'\n\n%s", verb, USAGE);
  return 2;
}
