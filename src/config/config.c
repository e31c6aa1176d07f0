/* config.c - the node's configuration: defaults, config.yaml (libyaml),
 * VMNODE_* environment variables and flags (config_set), in that order.
 *
 * Every field is described once, in the `fields` table below: its name in
 * config.yaml, its environment variable, its flag and its kind. A kind says
 * how a text value is checked and stored, so the file, the environment and
 * the flags all accept exactly the same values and give the same messages.
 * Setters write a reason without context ("expected true or false ...");
 * each caller adds where the value came from ("config.yaml line 4: joinNetwork:",
 * "environment VMNODE_JOIN_NETWORK:", "joinNetwork:").
 *
 * Loading is all or nothing: the file or the environment is applied to a
 * copy, which replaces the caller's config only when every value was good. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

extern char **environ;

#define DEFAULT_PORT "127.0.0.1:8080"
#define MAX_FILE_SIZE (1 << 20)
#define MIN_ITEM_SIZE 1024LL
#define MAX_ITEM_SIZE (1024LL * 1024 * 1024)
#define MAX_RESULT_WAIT_MS 600000

typedef enum kind {
  K_PORT,     /* [host]:port, derives listen_host, listen_port, base_url */
  K_KEY,      /* 64 hex digits, 0x optional; "" unsets; never echoed */
  K_STR,      /* any non-empty string */
  K_TEXT,     /* any string, "" included */
  K_OPT,      /* any string; "" unsets (NULL) */
  K_URL,      /* http(s) URL without trailing slash; "" unsets */
  K_BOOL,     /* true/false/yes/no/1/0 */
  K_SIZE,     /* bytes with an optional KiB/MiB/GiB suffix */
  K_MS,       /* milliseconds 0..MAX_RESULT_WAIT_MS */
  K_ENUM,     /* one of choices */
  K_ENUM_OPT, /* one of choices; "" unsets */
} kind;

typedef struct field {
  const char *name, *env, *flag;
  kind kind;
  size_t off;
  const char *const *choices;
} field;

static const char *const log_formats[] = {"logfmt", "json", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const gin_modes[] = {"debug", "release", "test", NULL};

#define F(name, env, flag, kind, member, choices) \
  { name, "VMNODE_" env, flag, kind, offsetof(config, member), choices }
static const field fields[] = {
    F("port", "PORT", "port", K_PORT, port, NULL),
    F("prvKey", "PRV_KEY", "prv-key", K_KEY, prv_key, NULL),
    F("keyfilePath", "KEYFILE_PATH", "keyfile-path", K_OPT, keyfile_path, NULL),
    F("nodeName", "NODE_NAME", "node-name", K_STR, node_name, NULL),
    F("nodeDesc", "NODE_DESC", "node-desc", K_TEXT, node_desc, NULL),
    F("nodeURL", "NODE_URL", "node-url", K_URL, node_url, NULL),
    F("hymxURL", "HYMX_URL", "hymx-url", K_OPT, hymx_url, NULL),
    F("arweaveURL", "ARWEAVE_URL", "arweave-url", K_OPT, arweave_url, NULL),
    F("joinNetwork", "JOIN_NETWORK", "join-network", K_BOOL, join_network, NULL),
    F("redisURL", "REDIS_URL", "redis-url", K_OPT, redis_url, NULL),
    F("ginMode", "GIN_MODE", "gin-mode", K_ENUM_OPT, gin_mode, gin_modes),
    F("dataDir", "DATA_DIR", "data-dir", K_STR, data_dir, NULL),
    F("maxItemSize", "MAX_ITEM_SIZE", "max-item-size", K_SIZE, max_item_size, NULL),
    F("resultWaitMs", "RESULT_WAIT_MS", "result-wait-ms", K_MS, result_wait_ms, NULL),
    F("logFormat", "LOG_FORMAT", "log-format", K_ENUM, log_format, log_formats),
    F("logLevel", "LOG_LEVEL", "log-level", K_ENUM, log_level, log_levels),
    F("luaTimeoutMs", "LUA_TIMEOUT_MS", "lua-timeout-ms", K_MS, lua_timeout_ms, NULL),
    F("luaMemoryLimit", "LUA_MEMORY_LIMIT", "lua-memory-limit", K_SIZE, lua_memory_limit, NULL),
    F("vmIdleMs", "VM_IDLE_MS", "vm-idle-ms", K_MS, vm_idle_ms, NULL),
};
#undef F
#define NFIELDS (sizeof fields / sizeof fields[0])

/* ---- small helpers ---- */

static char *xstrdup(const char *s) {
  return s ? strdup(s) : NULL;
}

static void free_secret(char *s) {
  if (!s) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

/* Replace *slot with a copy of v (NULL allowed). -1 when out of memory. */
static int replace(char **slot, const char *v) {
  char *n = NULL;
  if (v && !(n = strdup(v))) return -1;
  free(*slot);
  *slot = n;
  return 0;
}

static void whyf(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
}

/* A value quoted for a message: at most 64 bytes, control bytes as '?'. */
static const char *shown(const char *v, char buf[72]) {
  size_t i = 0;
  for (; v[i] && i < 64; i++) buf[i] = (unsigned char)v[i] < 0x20 ? '?' : v[i];
  buf[i] = 0;
  if (v[i]) memcpy(buf + i, "...", 4);
  return buf;
}

static const field *field_by_name(const char *name) {
  for (size_t i = 0; i < NFIELDS; i++)
    if (!strcmp(fields[i].name, name)) return &fields[i];
  return NULL;
}

/* "port, prvKey, ..., peers": for unknown-field messages. */
static const char *known_fields(void) {
  static const char *list =
      "port, prvKey, keyfilePath, nodeName, nodeDesc, nodeURL, hymxURL, arweaveURL, "
      "joinNetwork, redisURL, ginMode, dataDir, maxItemSize, resultWaitMs, logFormat, "
      "logLevel, luaTimeoutMs, luaMemoryLimit, vmIdleMs, peers";
  return list;
}

/* " (did you mean 'nodeURL'?)" when name differs from a field only in case. */
static const char *did_you_mean(const char *name, char *buf, size_t n) {
  buf[0] = 0;
  for (size_t i = 0; i < NFIELDS; i++)
    if (!strcasecmp(fields[i].name, name))
      snprintf(buf, n, " (did you mean '%s'?)", fields[i].name);
  if (!buf[0] && !strcasecmp(name, "peers")) snprintf(buf, n, " (did you mean 'peers'?)");
  return buf;
}

/* ---- value parsers ---- */

static int all_digits(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i])) return 0;
  return 1;
}

static int host_ok(const char *h, size_t n, int ipv6) {
  if (n == 0 || n > 253) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)h[i];
    if (isalnum(ch) || ch == '.' || ch == '-') continue;
    if (ipv6 && (ch == ':' || ch == '%')) continue;
    return 0;
  }
  return 1;
}

/* port: "8080" and ":8080" listen on all interfaces, "host:port" on host,
 * "[v6addr]:port" on an IPv6 address. */
static int parse_port(const char *v, char **host_out, int *port_out, char *why, size_t n) {
  char buf[72];
  const char *host = "", *digits = v;
  size_t hostlen = 0;
  int ipv6 = 0;
  if (v[0] == '[') {
    const char *close = strchr(v, ']');
    if (!close || close[1] != ':') goto bad;
    host = v + 1;
    hostlen = (size_t)(close - host);
    digits = close + 2;
    ipv6 = 1;
  } else {
    const char *colon = strrchr(v, ':');
    if (colon) {
      if (memchr(v, ':', (size_t)(colon - v))) {
        whyf(why, n, "an IPv6 address needs brackets, e.g. \"[::1]:8080\", got \"%s\"",
             shown(v, buf));
        return -1;
      }
      host = v;
      hostlen = (size_t)(colon - v);
      digits = colon + 1;
    }
  }
  if (hostlen && !host_ok(host, hostlen, ipv6)) goto bad;
  if (ipv6 && !hostlen) goto bad;
  size_t nd = strlen(digits);
  if (!all_digits(digits, nd)) goto bad;
  long port = nd > 5 ? 100000 : strtol(digits, NULL, 10);
  if (port < 1 || port > 65535) {
    whyf(why, n, "the port number must be 1..65535, got \"%s\"", shown(v, buf));
    return -1;
  }
  char *h = hostlen ? strndup(host, hostlen) : strdup("0.0.0.0");
  if (!h) goto oom;
  *host_out = h;
  *port_out = (int)port;
  return 0;
bad:
  whyf(why, n,
       "expected [host]:port such as \":8080\" (all interfaces), \"127.0.0.1:8080\" or "
       "\"8080\", got \"%s\"",
       shown(v, buf));
  return -1;
oom:
  whyf(why, n, "out of memory");
  return -1;
}

static char *make_base_url(const char *host, int port) {
  char buf[300];
  if (!host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !*host)
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d", port);
  else if (strchr(host, ':'))
    snprintf(buf, sizeof buf, "http://[%s]:%d", host, port);
  else
    snprintf(buf, sizeof buf, "http://%s:%d", host, port);
  return strdup(buf);
}

static int parse_key(const char *v, char *why, size_t n) {
  const char *h = v;
  if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X')) h += 2;
  size_t len = strlen(h);
  for (size_t i = 0; i < len; i++)
    if (!isxdigit((unsigned char)h[i])) {
      whyf(why, n,
           "expected 64 hex digits (a secp256k1 private key, 0x prefix optional); the value "
           "has a non-hex character at position %zu",
           (size_t)(h - v) + i + 1);
      return -1;
    }
  if (len != 64) {
    whyf(why, n,
         "expected 64 hex digits (a secp256k1 private key, 0x prefix optional), got %zu "
         "hex digits",
         len);
    return -1;
  }
  return 0;
}

static int parse_bool(const char *v, int *out, char *why, size_t n) {
  static const char *const yes[] = {"true", "yes", "1", "on"}, *const no[] = {"false", "no", "0",
                                                                              "off"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcasecmp(v, yes[i])) return *out = 1, 0;
    if (!strcasecmp(v, no[i])) return *out = 0, 0;
  }
  char buf[72];
  whyf(why, n, "expected true or false (or yes/no, 1/0), got \"%s\"", shown(v, buf));
  return -1;
}

/* "10485760", "10MiB", "512 KiB", "1g": K/Ki/KiB/M/Mi/MiB/G/Gi/GiB are powers of
 * 1024, KB/MB/GB powers of 1000, B bytes; case does not matter. */
static int parse_size(const char *v, int64_t *out, char *why, size_t n) {
  char buf[72];
  const char *p = v;
  int64_t num = 0, mul = 1;
  if (!isdigit((unsigned char)*p)) goto bad;
  for (; isdigit((unsigned char)*p); p++) {
    if (num > MAX_ITEM_SIZE) goto range;
    num = num * 10 + (*p - '0');
  }
  while (*p == ' ') p++;
  if (*p && strcasecmp(p, "b")) {
    int times = 0;
    switch (tolower((unsigned char)*p)) {
      case 'k':
        times = 1;
        break;
      case 'm':
        times = 2;
        break;
      case 'g':
        times = 3;
        break;
      default:
        goto bad;
    }
    const char *s = p + 1;
    int64_t unit;
    if (!*s || !strcasecmp(s, "i") || !strcasecmp(s, "ib"))
      unit = 1024;
    else if (!strcasecmp(s, "b"))
      unit = 1000;
    else
      goto bad;
    while (times--) mul *= unit;
  }
  /* mul <= 2^30, and num <= 2^30 when the product is computed: it fits. */
  if (num > MAX_ITEM_SIZE || num * mul > MAX_ITEM_SIZE || num * mul < MIN_ITEM_SIZE) goto range;
  *out = num * mul;
  return 0;
range:
  whyf(why, n, "must be between 1KiB and 1GiB, got \"%s\"", shown(v, buf));
  return -1;
bad:
  whyf(why, n, "expected a size such as 10MiB, 512KiB or 1048576 (bytes), got \"%s\"",
       shown(v, buf));
  return -1;
}

static int parse_ms(const char *v, int *out, char *why, size_t n) {
  char buf[72];
  size_t len = strlen(v);
  if (!all_digits(v, len) || len > 7 || strtol(v, NULL, 10) > MAX_RESULT_WAIT_MS) {
    whyf(why, n, "expected milliseconds between 0 and %d, got \"%s\"", MAX_RESULT_WAIT_MS,
         shown(v, buf));
    return -1;
  }
  *out = (int)strtol(v, NULL, 10);
  return 0;
}

static int url_ok(const char *v) {
  const char *rest = !strncasecmp(v, "http://", 7)    ? v + 7
                     : !strncasecmp(v, "https://", 8) ? v + 8
                                                      : NULL;
  if (!rest || !*rest || *rest == '/') return 0;
  for (const char *p = v; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f) return 0;
  return 1;
}

/* Check v and store it in the field f of c. v is never NULL here. On error,
 * why holds the reason and c is unchanged. */
static int set_field(config *c, const field *f, const char *v, char *why, size_t n) {
  void *slot = (char *)c + f->off;
  char **str = slot;
  char buf[72];
  switch (f->kind) {
    case K_PORT: {
      char *host = NULL;
      int port;
      if (parse_port(v, &host, &port, why, n) < 0) return -1;
      char *copy = strdup(v), *base = make_base_url(host, port);
      if (!copy || !base) {
        free(copy), free(base), free(host);
        goto oom;
      }
      free(c->port), free(c->listen_host), free(c->base_url);
      c->port = copy, c->listen_host = host, c->listen_port = port, c->base_url = base;
      return 0;
    }
    case K_KEY: {
      if (*v && parse_key(v, why, n) < 0) return -1;
      char *copy = NULL;
      if (*v && !(copy = strdup(v))) goto oom;
      free_secret(*str);
      *str = copy;
      return 0;
    }
    case K_STR:
      if (!*v) {
        whyf(why, n, "must not be empty");
        return -1;
      }
      return replace(str, v) < 0 ? (whyf(why, n, "out of memory"), -1) : 0;
    case K_TEXT:
      return replace(str, v) < 0 ? (whyf(why, n, "out of memory"), -1) : 0;
    case K_OPT:
      return replace(str, *v ? v : NULL) < 0 ? (whyf(why, n, "out of memory"), -1) : 0;
    case K_URL: {
      if (!*v) return replace(str, NULL), 0;
      if (!url_ok(v)) {
        whyf(why, n,
             "expected an http:// or https:// URL such as http://203.0.113.7:8080, got \"%s\"",
             shown(v, buf));
        return -1;
      }
      size_t len = strlen(v);
      while (len > 0 && v[len - 1] == '/') len--;
      char *copy = strndup(v, len);
      if (!copy) goto oom;
      free(*str);
      *str = copy;
      return 0;
    }
    case K_BOOL:
      return parse_bool(v, (int *)slot, why, n);
    case K_SIZE:
      return parse_size(v, (int64_t *)slot, why, n);
    case K_MS:
      return parse_ms(v, (int *)slot, why, n);
    case K_ENUM:
    case K_ENUM_OPT: {
      if (!*v && f->kind == K_ENUM_OPT) return replace(str, NULL), 0;
      for (const char *const *ch = f->choices; *ch; ch++)
        if (!strcasecmp(v, *ch))
          return replace(str, *ch) < 0 ? (whyf(why, n, "out of memory"), -1) : 0;
      char list[128] = "";
      for (const char *const *ch = f->choices; *ch; ch++) {
        strcat(list, ch == f->choices ? "" : ch[1] ? ", " : " or ");
        strcat(list, *ch);
      }
      whyf(why, n, "expected %s, got \"%s\"", list, shown(v, buf));
      return -1;
    }
  }
  whyf(why, n, "internal: unknown kind");
  return -1;
oom:
  whyf(why, n, "out of memory");
  return -1;
}

/* ---- the config object ---- */

void config_defaults(config *c) {
  memset(c, 0, sizeof *c);
  char why[256];
  set_field(c, field_by_name("port"), DEFAULT_PORT, why, sizeof why);
  c->node_name = strdup("vmnode");
  c->node_desc = strdup("");
  c->data_dir = strdup("./vmnode-data");
  c->max_item_size = 10 * 1024 * 1024;
  c->result_wait_ms = 30000;
  c->lua_timeout_ms = 10000;
  c->lua_memory_limit = (int64_t)256 << 20;
  c->vm_idle_ms = 600000;
  c->log_format = strdup("logfmt");
  c->log_level = strdup("info");
}

static void free_peers(config_peer *p, size_t n) {
  for (size_t i = 0; i < n; i++) free(p[i].acc_id), free(p[i].url), free(p[i].name);
  free(p);
}

void config_free(config *c) {
  if (!c) return;
  free(c->port), free(c->listen_host);
  free_secret(c->prv_key);
  free(c->keyfile_path), free(c->node_name), free(c->node_desc), free(c->node_url);
  free(c->hymx_url), free(c->arweave_url), free(c->redis_url), free(c->gin_mode);
  free(c->data_dir), free(c->log_format), free(c->log_level), free(c->source), free(c->base_url);
  free_peers(c->peers, c->npeers);
  memset(c, 0, sizeof *c);
}

/* Deep copy; -1 when out of memory (dst is then freed and zeroed). */
static int config_copy(config *dst, const config *src) {
  *dst = *src;
  int ok = 1;
#define DUP(m) \
  if (src->m && !(dst->m = strdup(src->m))) ok = 0;
  dst->port = dst->listen_host = dst->prv_key = dst->keyfile_path = dst->node_name = NULL;
  dst->node_desc = dst->node_url = dst->hymx_url = dst->arweave_url = dst->redis_url = NULL;
  dst->gin_mode = dst->data_dir = dst->log_format = dst->log_level = dst->source = NULL;
  dst->base_url = NULL;
  dst->peers = NULL;
  dst->npeers = 0;
  DUP(port)
  DUP(listen_host) DUP(prv_key) DUP(keyfile_path) DUP(node_name) DUP(node_desc) DUP(node_url)
      DUP(hymx_url) DUP(arweave_url) DUP(redis_url) DUP(gin_mode) DUP(data_dir) DUP(log_format)
          DUP(log_level) DUP(source) DUP(base_url)
#undef DUP
              if (ok && src->npeers) {
    dst->peers = calloc(src->npeers, sizeof *dst->peers);
    if (!dst->peers) ok = 0;
    for (size_t i = 0; ok && i < src->npeers; i++) {
      dst->npeers++;
      dst->peers[i].acc_id = xstrdup(src->peers[i].acc_id);
      dst->peers[i].url = xstrdup(src->peers[i].url);
      dst->peers[i].name = xstrdup(src->peers[i].name);
      if ((src->peers[i].acc_id && !dst->peers[i].acc_id) ||
          (src->peers[i].url && !dst->peers[i].url) || (src->peers[i].name && !dst->peers[i].name))
        ok = 0;
    }
  }
  if (!ok) {
    config_free(dst);
    return -1;
  }
  return 0;
}

int config_set(config *c, const char *name, const char *value, vn_err *err) {
  const field *f = field_by_name(name ? name : "");
  if (!f) {
    if (name && !strcmp(name, "peers"))
      return vn_errf(err, "config_bad_value",
                     "peers: list peers in config.yaml (a sequence of {accId, url, name})");
    char dym[96];
    return vn_errf(err, "config_unknown_field", "unknown field '%.64s'%s (known: %s)",
                   name ? name : "", did_you_mean(name ? name : "", dym, sizeof dym),
                   known_fields());
  }
  char why[300];
  if (set_field(c, f, value ? value : "", why, sizeof why) < 0)
    return vn_errf(err, "config_bad_value", "%s: %s", f->name, why);
  return 0;
}

int config_validate(const config *c, vn_err *err) {
  if (c->prv_key && c->keyfile_path)
    return vn_errf(err, "config_bad_value",
                   "prvKey and keyfilePath are both set: the node key is either a hex "
                   "secp256k1 key (prvKey) or an Arweave JWK file (keyfilePath), keep one");
  if (c->join_network && !c->node_url)
    return vn_errf(err, "config_bad_value",
                   "joinNetwork is true but nodeURL is not set: set nodeURL to the URL other "
                   "nodes reach this node at, e.g. http://203.0.113.7:8080");
  return 0;
}

const char *config_base_url(const config *c) {
  if (c->node_url && *c->node_url) return c->node_url;
  return c->base_url ? c->base_url : "http://127.0.0.1:8080";
}

const char *config_field_from_flag(const char *flag) {
  if (!flag) return NULL;
  if (flag[0] == '-' && flag[1] == '-') flag += 2;
  for (size_t i = 0; i < NFIELDS; i++)
    if (!strcmp(fields[i].flag, flag)) return fields[i].name;
  return NULL;
}

/* ---- YAML ---- */

/* Context of one load: where messages point. */
typedef struct yctx {
  yaml_document_t *doc;
  const char *name;
  vn_err *err;
} yctx;

static int line_of(const yaml_node_t *n) {
  return (int)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n) {
  return n->type == YAML_MAPPING_NODE    ? "a mapping"
         : n->type == YAML_SEQUENCE_NODE ? "a list"
                                         : "a value";
}

/* A plain empty, ~ or null scalar: YAML's null. */
static int is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *v = (const char *)n->data.scalar.value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Scalar text; NULL (after setting the error) for lists and mappings and for
 * values with a NUL byte inside. */
static const char *scalar(yctx *y, const yaml_node_t *n, const char *what) {
  if (n->type != YAML_SCALAR_NODE) {
    vn_errf(y->err, "config_bad_value", "%s line %d: %s: expected a single value, got %s", y->name,
            line_of(n), what, node_kind(n));
    return NULL;
  }
  if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
    vn_errf(y->err, "config_bad_value", "%s line %d: %s: the value contains a NUL character",
            y->name, line_of(n), what);
    return NULL;
  }
  return is_null(n) ? "" : (const char *)n->data.scalar.value;
}

static int load_peer(yctx *y, const yaml_node_t *m, size_t idx, config_peer *p) {
  char what[64];
  snprintf(what, sizeof what, "peers[%zu]", idx);
  if (m->type != YAML_MAPPING_NODE)
    return vn_errf(y->err, "config_bad_value",
                   "%s line %d: %s: expected a mapping {accId, url, name}, got %s", y->name,
                   line_of(m), what, node_kind(m));
  for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
    yaml_node_t *v = yaml_document_get_node(y->doc, pr->value);
    if (!k || !v) return vn_errf(y->err, "config_bad_file", "%s: broken YAML document", y->name);
    const char *key = scalar(y, k, what);
    if (!key) return -1;
    char **slot = !strcmp(key, "accId")  ? &p->acc_id
                  : !strcmp(key, "url")  ? &p->url
                  : !strcmp(key, "name") ? &p->name
                                         : NULL;
    if (!slot)
      return vn_errf(y->err, "config_unknown_field",
                     "%s line %d: unknown field '%.64s' in %s (known: accId, url, name)", y->name,
                     line_of(k), key, what);
    char fwhat[96];
    snprintf(fwhat, sizeof fwhat, "%s.%s", what, key);
    if (*slot)
      return vn_errf(y->err, "config_bad_file", "%s line %d: %s is given twice", y->name,
                     line_of(k), fwhat);
    const char *val = scalar(y, v, fwhat);
    if (!val) return -1;
    if (slot == &p->url && !url_ok(val)) {
      char buf[72];
      return vn_errf(y->err, "config_bad_value",
                     "%s line %d: %s: expected an http:// or https:// URL, got \"%s\"", y->name,
                     line_of(v), fwhat, shown(val, buf));
    }
    size_t len = strlen(val);
    if (slot == &p->url)
      while (len > 0 && val[len - 1] == '/') len--;
    if (!(*slot = strndup(val, len))) return vn_errf(y->err, "out_of_memory", "out of memory");
  }
  if (!p->acc_id || !*p->acc_id || !p->url)
    return vn_errf(y->err, "config_bad_value", "%s line %d: %s: accId and url are required",
                   y->name, line_of(m), what);
  return 0;
}

static int load_peers(yctx *y, config *c, const yaml_node_t *seq) {
  config_peer *peers = NULL;
  size_t n = 0;
  if (!is_null(seq)) {
    if (seq->type != YAML_SEQUENCE_NODE)
      return vn_errf(y->err, "config_bad_value",
                     "%s line %d: peers: expected a list of {accId, url, name}, got %s", y->name,
                     line_of(seq), node_kind(seq));
    size_t cap = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (cap && !(peers = calloc(cap, sizeof *peers)))
      return vn_errf(y->err, "out_of_memory", "out of memory");
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
      yaml_node_t *m = yaml_document_get_node(y->doc, *it);
      n++;
      if (!m || load_peer(y, m, n - 1, &peers[n - 1]) < 0) {
        if (!m) vn_errf(y->err, "config_bad_file", "%s: broken YAML document", y->name);
        free_peers(peers, n);
        return -1;
      }
      for (size_t j = 0; j + 1 < n; j++)
        if (!strcmp(peers[j].acc_id, peers[n - 1].acc_id)) {
          vn_errf(y->err, "config_bad_value",
                  "%s line %d: peers[%zu]: accId %.100s is listed twice", y->name, line_of(m),
                  n - 1, peers[n - 1].acc_id);
          free_peers(peers, n);
          return -1;
        }
    }
  }
  free_peers(c->peers, c->npeers);
  c->peers = peers;
  c->npeers = n;
  return 0;
}

static int load_root(yctx *y, config *c, const yaml_node_t *root) {
  if (is_null(root)) return 0; /* an empty file */
  if (root->type != YAML_MAPPING_NODE)
    return vn_errf(y->err, "config_bad_file",
                   "%s line %d: expected a mapping of fields (\"field: value\" lines), got %s",
                   y->name, line_of(root), node_kind(root));
  int seen[NFIELDS + 1] = {0}; /* line where each field was set; [NFIELDS] = peers */
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
       pr++) {
    yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
    yaml_node_t *v = yaml_document_get_node(y->doc, pr->value);
    if (!k || !v) return vn_errf(y->err, "config_bad_file", "%s: broken YAML document", y->name);
    const char *key = scalar(y, k, "field name");
    if (!key) return -1;
    const field *f = field_by_name(key);
    size_t idx = f ? (size_t)(f - fields) : NFIELDS;
    if (!f && strcmp(key, "peers")) {
      char dym[96];
      return vn_errf(y->err, "config_unknown_field",
                     "%s line %d: unknown field '%.64s'%s (known: %s)", y->name, line_of(k), key,
                     did_you_mean(key, dym, sizeof dym), known_fields());
    }
    if (seen[idx])
      return vn_errf(y->err, "config_bad_file", "%s line %d: %s is given twice (first on line %d)",
                     y->name, line_of(k), key, seen[idx]);
    seen[idx] = line_of(k);
    if (!f) {
      if (load_peers(y, c, v) < 0) return -1;
      continue;
    }
    const char *val = scalar(y, v, f->name);
    if (!val) return -1;
    char why[300];
    if (set_field(c, f, val, why, sizeof why) < 0)
      return vn_errf(y->err, "config_bad_value", "%s line %d: %s: %s", y->name, line_of(v), f->name,
                     why);
  }
  return 0;
}

/* Overwrite the text of every scalar (a prvKey may be among them) before the
 * document is freed. */
static void wipe_document(yaml_document_t *doc) {
  for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
    if (n->type == YAML_SCALAR_NODE) explicit_bzero(n->data.scalar.value, n->data.scalar.length);
}

int config_load_string(config *c, const char *yaml, size_t len, const char *name, vn_err *err) {
  if (!name) name = "config.yaml";
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) return vn_errf(err, "out_of_memory", "out of memory");
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (!yaml_parser_load(&parser, &doc)) {
    int rc = vn_errf(err, "config_bad_file", "%s line %zu column %zu: YAML syntax error: %s%s%s",
                     name, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
                     parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    return rc;
  }
  int rc = 0;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    /* A second document would be silently ignored: refuse it. */
    yaml_document_t more;
    if (!yaml_parser_load(&parser, &more)) {
      rc = vn_errf(err, "config_bad_file", "%s line %zu column %zu: YAML syntax error: %s", name,
                   parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                   parser.problem ? parser.problem : "unknown problem");
    } else {
      yaml_node_t *r2 = yaml_document_get_root_node(&more);
      if (r2)
        rc = vn_errf(err, "config_bad_file",
                     "%s line %d: a second YAML document (after ---); config.yaml holds one", name,
                     line_of(r2));
      wipe_document(&more);
      yaml_document_delete(&more);
    }
    if (rc == 0) {
      config tmp;
      if (config_copy(&tmp, c) < 0) {
        rc = vn_errf(err, "out_of_memory", "out of memory");
      } else {
        yctx y = {&doc, name, err};
        rc = load_root(&y, &tmp, root);
        if (rc == 0) {
          config_free(c);
          *c = tmp;
        } else {
          config_free(&tmp);
        }
      }
    }
  }
  wipe_document(&doc);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return rc;
}

int config_load_file(config *c, const char *path, int required, vn_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT && !required) return 0;
    return vn_errf(err, "config_bad_file", "cannot open config file %s: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return vn_errf(err, "config_bad_file", "config file %s is a directory", path);
  }
  char *buf = malloc(MAX_FILE_SIZE + 1);
  if (!buf) {
    fclose(f);
    return vn_errf(err, "out_of_memory", "out of memory");
  }
  size_t n = fread(buf, 1, MAX_FILE_SIZE + 1, f);
  int rerr = ferror(f);
  fclose(f);
  int rc;
  if (rerr)
    rc = vn_errf(err, "config_bad_file", "cannot read config file %s", path);
  else if (n > MAX_FILE_SIZE)
    rc = vn_errf(err, "config_bad_file", "config file %s is larger than 1 MiB", path);
  else
    rc = config_load_string(c, buf, n, path, err);
  explicit_bzero(buf, n);
  free(buf);
  if (rc == 0 && replace(&c->source, path) < 0) rc = vn_errf(err, "out_of_memory", "out of memory");
  return rc;
}

/* ---- environment ---- */

int config_load_env(config *c, vn_err *err) {
  config tmp;
  if (config_copy(&tmp, c) < 0) return vn_errf(err, "out_of_memory", "out of memory");
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "VMNODE_", 7)) continue;
    const char *eq = strchr(*e, '=');
    size_t nlen = eq ? (size_t)(eq - *e) : strlen(*e);
    const char *value = eq ? eq + 1 : "";
    if ((nlen == 13 && !strncmp(*e, "VMNODE_CONFIG", nlen)) ||
        (nlen == 11 && !strncmp(*e, "VMNODE_NODE", nlen)))
      continue;
    const field *f = NULL;
    for (size_t i = 0; i < NFIELDS; i++)
      if (strlen(fields[i].env) == nlen && !strncmp(fields[i].env, *e, nlen)) f = &fields[i];
    if (!f) {
      char known[400] = "";
      for (size_t i = 0; i < NFIELDS; i++) {
        if (i) strcat(known, ", ");
        strcat(known, fields[i].env);
      }
      vn_errf(err, "config_unknown_field",
              "environment %.*s: unknown variable (known: %s; and VMNODE_CONFIG, VMNODE_NODE for "
              "the CLI)",
              (int)(nlen > 64 ? 64 : nlen), *e, known);
      config_free(&tmp);
      return -1;
    }
    if (!*value) continue; /* VMNODE_X= means "not set", as in many shell setups */
    char why[300];
    if (set_field(&tmp, f, value, why, sizeof why) < 0) {
      vn_errf(err, "config_bad_value", "environment %s: %s: %s", f->env, f->name, why);
      config_free(&tmp);
      return -1;
    }
  }
  config_free(c);
  *c = tmp;
  return 0;
}

/* ---- dump ---- */

/* Decode one UTF-8 sequence at p; *len gets its length. -1 when invalid. */
static long utf8_decode(const unsigned char *p, size_t *len) {
  long cp;
  size_t n;
  if (p[0] < 0x80) return *len = 1, p[0];
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    cp = p[0] & 0x1f, n = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    cp = p[0] & 0x0f, n = 3;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    cp = p[0] & 0x07, n = 4;
  else
    return -1;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return -1; /* also stops at the NUL */
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return -1;
  *len = n;
  return cp;
}

/* s as a YAML double-quoted scalar that reads back as s. Characters that
 * are not printable in YAML, or that YAML treats as line breaks or a BOM
 * (U+0085, U+2028, U+2029, U+FEFF), are escaped; bytes that are not UTF-8
 * (only possible from the environment or flags) become U+FFFD. */
static void put_str(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    size_t n = 1;
    long cp = utf8_decode(p, &n);
    if (cp == '"' || cp == '\\')
      fprintf(f, "\\%c", (int)cp);
    else if (cp == '\n')
      fputs("\\n", f);
    else if (cp == '\t')
      fputs("\\t", f);
    else if (cp < 0)
      fputs("\\uFFFD", f);
    else if ((cp >= 0x20 && cp <= 0x7e) ||
             (cp >= 0xa0 && cp <= 0xd7ff && cp != 0x2028 && cp != 0x2029) ||
             (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) || cp >= 0x10000)
      fwrite(p, 1, n, f);
    else
      fprintf(f, "\\u%04lX", cp);
    p += n;
  }
  fputc('"', f);
}

/* redis://user:password@host -> redis://user:<redacted>@host */
static void put_redis(FILE *f, const char *s) {
  const char *scheme = s ? strstr(s, "://") : NULL;
  const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
  const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
  if (!colon) {
    put_str(f, s);
    return;
  }
  char *red = NULL;
  if (asprintf(&red, "%.*s<redacted>%s", (int)(colon + 1 - s), s, at) < 0) {
    put_str(f, "<redacted>");
    return;
  }
  put_str(f, red);
  free(red);
}

void config_dump(const config *c, FILE *f) {
  if (c->source) {
    fputs("# vmnode effective configuration, file ", f);
    put_str(f, c->source);
    fputc('\n', f);
  } else {
    fputs("# vmnode effective configuration, no config file\n", f);
  }
  for (size_t i = 0; i < NFIELDS; i++) {
    const field *fd = &fields[i];
    const void *slot = (const char *)c + fd->off;
    fprintf(f, "%s: ", fd->name);
    switch (fd->kind) {
      case K_KEY:
        put_str(f, *(char *const *)slot ? "<redacted>" : NULL);
        break;
      case K_BOOL:
        fputs(*(const int *)slot ? "true" : "false", f);
        break;
      case K_SIZE:
        fprintf(f, "%lld", (long long)*(const int64_t *)slot);
        break;
      case K_MS:
        fprintf(f, "%d", *(const int *)slot);
        break;
      default:
        if (fd->off == offsetof(config, redis_url))
          put_redis(f, c->redis_url);
        else
          put_str(f, *(char *const *)slot);
    }
    fputc('\n', f);
  }
  if (!c->npeers) {
    fputs("peers: []\n", f);
    return;
  }
  fputs("peers:\n", f);
  for (size_t i = 0; i < c->npeers; i++) {
    fputs("  - accId: ", f);
    put_str(f, c->peers[i].acc_id);
    fputs("\n    url: ", f);
    put_str(f, c->peers[i].url);
    if (c->peers[i].name) {
      fputs("\n    name: ", f);
      put_str(f, c->peers[i].name);
    }
    fputc('\n', f);
  }
}
