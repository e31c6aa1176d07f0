/* route.c - request-line parsing for the HTTP API (see route.h).
 *
 * One table maps the first path segment and the number of parameters to a
 * route; each parameter has a type letter that says how it is validated:
 *   p  process id        m  message / module id      n  nonce
 *   a  node address or id (/node, /processes)        k  cache key (rest of the path)
 * Nothing here allocates except the query splitting of test/fuzz URLs and
 * the cursor decoding. */
#include "api/route.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/enc.h"
#include "common/metrics.h"

typedef struct rdef {
  const char *name;
  api_rid id;
  int metric;
  int post;         /* 1: POST only, 0: GET/HEAD only */
  const char *args; /* parameter type letters, in path order */
} rdef;

static const rdef ROUTES[] = {
    {"info", AR_INFO, MR_INFO, 0, ""},
    {"timestamp", AR_TIMESTAMP, MR_TIMESTAMP, 0, ""},
    {"result", AR_RESULT, MR_RESULT, 0, "m"},
    {"result", AR_RESULT, MR_RESULT, 0, "pm"},
    {"results", AR_RESULTS, MR_RESULTS, 0, "p"},
    {"dry-run", AR_DRYRUN, MR_DRYRUN, 1, ""},
    {"message", AR_MESSAGE, MR_ITEM, 0, "m"},
    {"messageByNonce", AR_MESSAGE_BY_NONCE, MR_ITEM, 0, "pn"},
    {"assignmentByNonce", AR_ASSIGNMENT_BY_NONCE, MR_ASSIGNMENT, 0, "pn"},
    {"assignmentByMessage", AR_ASSIGNMENT_BY_MESSAGE, MR_ASSIGNMENT, 0, "m"},
    {"nonce", AR_NONCE, MR_NONCE, 0, "p"},
    {"nodes", AR_NODES, MR_NODES, 0, ""},
    {"node", AR_NODE, MR_NODES, 0, "a"},
    {"nodesByProcess", AR_NODES_BY_PROCESS, MR_NODES, 0, "p"},
    {"processes", AR_PROCESSES, MR_PROCESSES, 0, "a"},
    {"modules", AR_MODULES, MR_MODULES, 0, ""},
    {"module", AR_MODULE, MR_MODULES, 0, "m"},
    {"cache", AR_CACHE, MR_CACHE, 0, "pk"},
    {"metrics", AR_METRICS, MR_METRICS, 0, ""},
    {"verify-log", AR_VERIFY_LOG, MR_OTHER, 0, "p"},
    {"graphql", AR_GRAPHQL, MR_GRAPHQL, 1, ""},
    {"state", AR_STATE, MR_OTHER, 0, "p"},
};
#define NROUTES (sizeof ROUTES / sizeof ROUTES[0])

static int fail(api_route *r, int status, const char *code) {
  if (!r->status) {
    r->status = status;
    r->error = code;
  }
  return -1;
}

static int is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int id_n(const char *s, size_t n) {
  if (n != ITEM_ID_LEN) return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_b64url(s[i])) return 0;
  return 1;
}

static int addr_n(const char *s, size_t n) {
  if (id_n(s, n)) return 1;
  if (n != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return 0;
  for (size_t i = 2; i < n; i++)
    if (!is_hex(s[i])) return 0;
  return 1;
}

int api_is_id(const char *s) {
  return s && id_n(s, strlen(s));
}

int api_is_address(const char *s) {
  return s && addr_n(s, strlen(s));
}

static int nonce_n(const char *s, size_t n, int64_t *v) {
  if (n == 0 || n > 16) return -1; /* 2^53 has 16 digits */
  int64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    x = x * 10 + (s[i] - '0');
  }
  if (x > API_MAX_NONCE) return -1;
  *v = x;
  return 0;
}

int api_parse_nonce(const char *s, int64_t *v) {
  return s ? nonce_n(s, strlen(s), v) : -1;
}

int api_parse_cursor(const char *s, int64_t *nonce) {
  if (!s) return -1;
  size_t n = strlen(s);
  if (api_parse_nonce(s, nonce) == 0) return 0;
  if (n == 0 || n > 4096) return -1;
  char *t = malloc(n + 1);
  if (!t) return -1;
  for (size_t i = 0; i < n; i++) t[i] = s[i] == ' ' ? '+' : s[i];
  t[n] = 0;
  size_t blen = 0;
  uint8_t *b = b64_decode_alloc(t, n, &blen);
  free(t);
  if (!b) return -1;
  json_error_t je;
  json_t *j = json_loadb((const char *)b, blen, 0, &je);
  free(b);
  int rc = -1;
  json_t *o = j ? json_object_get(j, "ordinate") : NULL;
  if (json_is_string(o)) {
    rc = nonce_n(json_string_value(o), json_string_length(o), nonce);
  } else if (json_is_integer(o) && json_integer_value(o) >= 0 &&
             json_integer_value(o) <= API_MAX_NONCE) {
    *nonce = json_integer_value(o);
    rc = 0;
  }
  json_decref(j);
  return rc;
}

static void set_param(api_route *r, char type, const char *s, size_t n) {
  switch (type) {
    case 'p':
      memcpy(r->pid, s, n);
      r->pid[n] = 0;
      break;
    case 'm':
      memcpy(r->msgid, s, n);
      r->msgid[n] = 0;
      break;
    case 'a':
      memcpy(r->acc, s, n);
      r->acc[n] = 0;
      if (n == ITEM_ID_LEN) { /* /processes/:id may name a process */
        memcpy(r->pid, s, n);
        r->pid[n] = 0;
      }
      break;
    case 'k':
      memcpy(r->key, s, n);
      r->key[n] = 0;
      break;
    default:
      break;
  }
}

/* Validate one parameter of type `type` (s, n) and store it. */
static int take_param(api_route *r, char type, const char *s, size_t n) {
  switch (type) {
    case 'p':
    case 'm':
      if (!id_n(s, n)) return fail(r, 400, "bad_id");
      break;
    case 'a':
      if (!addr_n(s, n)) return fail(r, 400, "bad_id");
      break;
    case 'n':
      if (nonce_n(s, n, &r->nonce) < 0) return fail(r, 400, "bad_nonce");
      return 0;
    case 'k':
      if (n == 0 || n > API_MAX_KEY) return fail(r, 400, "bad_key");
      break;
    default:
      return fail(r, 404, "not_found");
  }
  set_param(r, type, s, n);
  return 0;
}

/* Match the path (without leading '/', trailing '/' removed) against ROUTES. */
static int match(api_route *r, int kind, const char *path, size_t plen) {
  /* Split into at most 3 segments; the third keeps any further '/' (cache
   * keys may hold one; in ids and nonces it fails validation). */
  const char *seg[3];
  size_t len[3];
  int nseg = 0;
  const char *p = path, *end = path + plen;
  while (nseg < 3) {
    const char *slash = nseg < 2 ? memchr(p, '/', (size_t)(end - p)) : NULL;
    seg[nseg] = p;
    len[nseg] = slash ? (size_t)(slash - p) : (size_t)(end - p);
    nseg++;
    if (!slash) break;
    p = slash + 1;
  }
  for (size_t i = 0; i < NROUTES; i++) {
    const rdef *d = &ROUTES[i];
    if (strlen(d->name) != len[0] || memcmp(d->name, seg[0], len[0]) != 0) continue;
    size_t nargs = strlen(d->args);
    if (nargs != (size_t)(nseg - 1)) continue;
    r->id = d->id;
    r->metric = d->metric;
    if (kind != d->post) return fail(r, 405, "method_not_allowed");
    for (size_t a = 0; a < nargs; a++)
      if (take_param(r, d->args[a], seg[a + 1], len[a + 1]) < 0) return -1;
    return 0;
  }
  /* GET /:msgid?process-id= (AO SU): a lone segment that is an id. */
  if (nseg == 1 && id_n(seg[0], len[0])) {
    r->id = AR_SU_MESSAGE;
    r->metric = MR_ITEM;
    if (kind != 0) return fail(r, 405, "method_not_allowed");
    set_param(r, 'm', seg[0], len[0]);
    return 0;
  }
  return fail(r, 404, "not_found");
}

static int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..n) into a new string ('+' is a space). */
static char *qdecode(const char *s, size_t n) {
  char *o = malloc(n + 1);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      o[k++] = ' ';
    } else if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
      o[k++] = (char)(hexv(s[i + 1]) << 4 | hexv(s[i + 2]));
      i += 2;
    } else {
      o[k++] = s[i];
    }
  }
  o[k] = 0;
  return o;
}

static void parse_query(api_route *r, const char *q) {
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    const char *eq = memchr(q, '=', n);
    size_t kn = eq ? (size_t)(eq - q) : n;
    char *k = qdecode(q, kn);
    char *v = eq ? qdecode(eq + 1, n - kn - 1) : qdecode("", 0);
    if (k && v) api_route_query(r, k, v);
    free(k);
    free(v);
    if (!amp) break;
    q = amp + 1;
  }
}

/* with_query: split url at '?' and apply the query; else the whole url is
 * the (already decoded) path, where a '?' is just a character. */
static int parse(const char *method, const char *url, int with_query, api_route *out) {
  memset(out, 0, sizeof *out);
  out->id = AR_NONE;
  out->metric = MR_OTHER;
  out->nonce = -1;
  out->timeout_ms = -1;
  out->after = -1;
  out->before = INT64_MAX;
  out->asc = 1;
  out->limit = API_DEFAULT_LIMIT;
  if (!method) method = "";
  if (!url) url = "";

  int kind; /* 0 GET/HEAD, 1 POST, 2 anything else */
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
    kind = 0;
  } else if (strcmp(method, "POST") == 0) {
    kind = 1;
    out->is_post = 1;
  } else if (strcmp(method, "OPTIONS") == 0) {
    out->id = AR_OPTIONS; /* preflight: any path */
    return 0;
  } else {
    kind = 2;
  }

  const char *qm = with_query ? strchr(url, '?') : NULL;
  size_t plen = qm ? (size_t)(qm - url) : strlen(url);
  if (plen == 0 || url[0] != '/') return fail(out, 404, "not_found");
  const char *path = url + 1;
  plen--;
  if (plen > 0 && path[plen - 1] == '/') plen--; /* "/info/" = "/info" */

  int rc;
  if (plen == 0) { /* the root */
    if (kind == 1) {
      out->id = AR_SUBMIT;
      out->metric = MR_SUBMIT;
    } else {
      out->id = AR_SU_INFO;
      out->metric = MR_INFO;
    }
    rc = kind == 2 ? fail(out, 405, "method_not_allowed") : 0;
  } else {
    rc = match(out, kind, path, plen);
  }
  if (rc == 0 && qm) parse_query(out, qm + 1);
  return out->status ? -1 : 0;
}

int api_route_parse(const char *method, const char *url, api_route *out) {
  return parse(method, url, 1, out);
}

int api_route_parse_path(const char *method, const char *path, api_route *out) {
  return parse(method, path, 0, out);
}

int api_route_query(api_route *r, const char *name, const char *value) {
  if (!name || !value) return 0;
  switch (r->id) {
    case AR_RESULT:
    case AR_DRYRUN:
    case AR_SU_MESSAGE:
      if (strcmp(name, "process-id") == 0) {
        if (!api_is_id(value)) return fail(r, 400, "bad_id");
        if (!r->pid[0]) strcpy(r->pid, value); /* a path pid wins */
      } else if (r->id == AR_RESULT && strcmp(name, "timeout-ms") == 0) {
        if (api_parse_nonce(value, &r->timeout_ms) < 0) return fail(r, 400, "bad_timeout");
      }
      return 0;
    case AR_RESULTS:
      if (!value[0]) return 0; /* "from=" and friends: as if absent */
      if (strcmp(name, "from") == 0) {
        if (api_parse_cursor(value, &r->after) < 0) return fail(r, 400, "bad_cursor");
      } else if (strcmp(name, "to") == 0) {
        if (api_parse_cursor(value, &r->before) < 0) return fail(r, 400, "bad_cursor");
      } else if (strcmp(name, "sort") == 0) {
        if (strcasecmp(value, "ASC") == 0) {
          r->asc = 1;
        } else if (strcasecmp(value, "DESC") == 0) {
          r->asc = 0;
        } else {
          return fail(r, 400, "bad_sort");
        }
      } else if (strcmp(name, "limit") == 0) {
        int64_t l;
        if (api_parse_nonce(value, &l) < 0 || l < 1) return fail(r, 400, "bad_limit");
        r->limit = l > API_MAX_LIMIT ? API_MAX_LIMIT : (int)l;
      }
      return 0;
    default:
      return 0;
  }
}
