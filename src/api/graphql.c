/* graphql.c - POST /graphql: the gateway queries AO clients make (see
 * graphql.h for the layers and docs/api.md "/graphql" for what is served).
 *
 * aoconnect's spawn() looks the module up with transactions(ids: [...]) and
 * checks its tags; aos finds a process by owner + Name tag; ao-scheduler-utils
 * finds a scheduler's URL by owner + Type=Scheduler-Location. All of these are
 * one `transactions` query with some of ids / owners / tags, so that is what
 * this file answers, from the node's own store:
 *   - with ids: those items (any Type, modules included);
 *   - without ids, by the Type tag filter: Process (the processes table, by
 *     owner and Name), Module (the modules table), Scheduler-Location (one
 *     item the node signs on the spot: its address and URL);
 * then every filter is checked on the decoded item, the page sorted by the
 * time the node stored the item, newest first unless sort asks otherwise. */
#include "api/graphql.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/route.h"
#include "common/enc.h"

/* Items looked at for one query without ids; past it the page says
 * hasNextPage (a node with more processes per owner than this is not what
 * the gateway subset is for). */
#define GQL_MAX_CANDIDATES 10000
/* Time-To-Live of the Scheduler-Location the node signs (ms). */
#define GQL_SCHEDULER_TTL_MS "86400000"

/* ======================================================================
 * 1. The document
 * ====================================================================== */

typedef struct parser {
  const char *s;
  size_t n, i;
  const json_t *vars; /* the request's variables, or NULL */
  json_t *defaults;   /* defaults of the current operation's variables (owned) */
  int depth;
  size_t nfields;
  vn_err *err;
} parser;

static int perr(parser *p, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(parser *p, const char *code, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return vn_errh(p->err, 400, code, "%s (at offset %zu of the query)", msg, p->i);
}

static int oom(parser *p) {
  return vn_errh(p->err, 500, "oom", "out of memory");
}

static int is_name_start(int c) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int is_name_char(int c) {
  return is_name_start(c) || is_digit(c);
}

/* Skip what GraphQL ignores: white space, line ends, commas, comments, a BOM. */
static void skip(parser *p) {
  while (p->i < p->n) {
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
      p->i++;
    } else if (c == '#') {
      while (p->i < p->n && p->s[p->i] != '\n' && p->s[p->i] != '\r') p->i++;
    } else if (c == 0xEF && p->n - p->i >= 3 && (unsigned char)p->s[p->i + 1] == 0xBB &&
               (unsigned char)p->s[p->i + 2] == 0xBF) {
      p->i += 3;
    } else {
      break;
    }
  }
}

/* The next significant byte, or -1 at the end. */
static int peek(parser *p) {
  skip(p);
  return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int take(parser *p, char c) {
  if (peek(p) != (unsigned char)c) return 0;
  p->i++;
  return 1;
}

static int expect(parser *p, char c, const char *where) {
  if (take(p, c)) return 0;
  return perr(p, "graphql_syntax", "expected '%c' %s", c, where);
}

/* Whether the next token is the name `kw` (whole, not a prefix). */
static int at_keyword(parser *p, const char *kw) {
  if (!is_name_start(peek(p))) return 0;
  size_t k = strlen(kw);
  if (p->n - p->i < k || memcmp(p->s + p->i, kw, k) != 0) return 0;
  return p->i + k == p->n || !is_name_char((unsigned char)p->s[p->i + k]);
}

/* A Name token into *out (malloc'd). */
static int name(parser *p, char **out, const char *what) {
  *out = NULL;
  if (!is_name_start(peek(p))) return perr(p, "graphql_syntax", "expected %s", what);
  size_t b = p->i;
  while (p->i < p->n && is_name_char((unsigned char)p->s[p->i])) p->i++;
  *out = strndup(p->s + b, p->i - b);
  return *out ? 0 : oom(p);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at s[i..]: the value, or -1. */
static long hex4(parser *p, size_t i) {
  if (p->n - i < 4) return -1;
  long v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval((unsigned char)p->s[i + (size_t)k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

static size_t utf8_put(char *o, unsigned long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* A JSON string from buf (which it frees); NULL bytes are fine, bytes that
 * are not UTF-8 are a syntax error. */
static int string_done(parser *p, char *buf, size_t len, json_t **out) {
  *out = json_stringn(buf, len);
  free(buf);
  if (!*out) return perr(p, "graphql_syntax", "a string is not valid UTF-8");
  return 0;
}

/* """block string""": the raw text, \""" standing for """. The common
 * indentation is not removed (the values this node reads are one-liners). */
static int block_string(parser *p, json_t **out) {
  p->i += 3;
  char *buf = malloc(p->n - p->i + 1);
  if (!buf) return oom(p);
  size_t k = 0;
  for (;;) {
    if (p->i >= p->n) {
      free(buf);
      return perr(p, "graphql_syntax", "unterminated block string");
    }
    if (p->n - p->i >= 3 && memcmp(p->s + p->i, "\"\"\"", 3) == 0) {
      p->i += 3;
      return string_done(p, buf, k, out);
    }
    if (p->n - p->i >= 4 && memcmp(p->s + p->i, "\\\"\"\"", 4) == 0) {
      memcpy(buf + k, "\"\"\"", 3);
      k += 3;
      p->i += 4;
      continue;
    }
    buf[k++] = p->s[p->i++];
  }
}

/* "string" with the JSON-like escapes; the output is never longer than the
 * input, so one buffer of the remaining length is enough. */
static int string_value(parser *p, json_t **out) {
  if (p->n - p->i >= 3 && memcmp(p->s + p->i, "\"\"\"", 3) == 0) return block_string(p, out);
  p->i++;
  char *buf = malloc(p->n - p->i + 1);
  if (!buf) return oom(p);
  size_t k = 0;
  for (;;) {
    if (p->i >= p->n) break;
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '"') {
      p->i++;
      return string_done(p, buf, k, out);
    }
    if (c == '\n' || c == '\r') break;
    if (c < 0x20 && c != '\t') {
      free(buf);
      return perr(p, "graphql_syntax", "control character in a string");
    }
    if (c != '\\') {
      buf[k++] = (char)c;
      p->i++;
      continue;
    }
    if (p->n - p->i < 2) break;
    char e = p->s[p->i + 1];
    p->i += 2;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char rep[] = "\"\\/\b\f\n\r\t";
      buf[k++] = rep[simple - "\"\\/bfnrt"];
      continue;
    }
    long cp = e == 'u' ? hex4(p, p->i) : -1;
    if (cp < 0) {
      free(buf);
      return perr(p, "graphql_syntax", "bad escape in a string");
    }
    p->i += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair: \uD8xx\uDCxx */
      long lo =
          p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u' ? hex4(p, p->i + 2) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        free(buf);
        return perr(p, "graphql_syntax", "lone surrogate in a string escape");
      }
      p->i += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      free(buf);
      return perr(p, "graphql_syntax", "lone surrogate in a string escape");
    }
    k += utf8_put(buf + k, (unsigned long)cp);
  }
  free(buf);
  return perr(p, "graphql_syntax", "unterminated string");
}

static int number_value(parser *p, json_t **out) {
  size_t b = p->i;
  int is_float = 0;
  if (p->s[p->i] == '-') p->i++;
  if (p->i >= p->n || !is_digit((unsigned char)p->s[p->i]))
    return perr(p, "graphql_syntax", "bad number");
  if (p->s[p->i] == '0') {
    p->i++;
    if (p->i < p->n && is_digit((unsigned char)p->s[p->i]))
      return perr(p, "graphql_syntax", "a number with a leading zero");
  } else {
    while (p->i < p->n && is_digit((unsigned char)p->s[p->i])) p->i++;
  }
  if (p->i < p->n && p->s[p->i] == '.') {
    is_float = 1;
    p->i++;
    if (p->i >= p->n || !is_digit((unsigned char)p->s[p->i]))
      return perr(p, "graphql_syntax", "bad number");
    while (p->i < p->n && is_digit((unsigned char)p->s[p->i])) p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    is_float = 1;
    p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    if (p->i >= p->n || !is_digit((unsigned char)p->s[p->i]))
      return perr(p, "graphql_syntax", "bad number");
    while (p->i < p->n && is_digit((unsigned char)p->s[p->i])) p->i++;
  }
  if (p->i < p->n && (is_name_start((unsigned char)p->s[p->i]) || p->s[p->i] == '.'))
    return perr(p, "graphql_syntax", "bad number");
  char tok[64];
  size_t len = p->i - b;
  if (len >= sizeof tok) return perr(p, "graphql_syntax", "number too long");
  memcpy(tok, p->s + b, len);
  tok[len] = 0;
  errno = 0;
  if (!is_float) {
    long long v = strtoll(tok, NULL, 10);
    if (errno == ERANGE) return perr(p, "graphql_syntax", "integer out of range");
    *out = json_integer(v);
  } else {
    double v = strtod(tok, NULL);
    if (!isfinite(v)) return perr(p, "graphql_syntax", "number out of range");
    *out = json_real(v);
  }
  return *out ? 0 : oom(p);
}

static int value(parser *p, int is_const, json_t **out);

/* $name: the request's variable, else the operation's default, else null. */
static int variable(parser *p, json_t **out) {
  p->i++;
  char *nm;
  if (name(p, &nm, "a variable name after '$'")) return -1;
  json_t *v = p->vars ? json_object_get(p->vars, nm) : NULL;
  if (!v) v = json_object_get(p->defaults, nm);
  free(nm);
  *out = v ? json_incref(v) : json_null();
  return 0;
}

static int list_value(parser *p, int is_const, json_t **out) {
  p->i++;
  json_t *a = json_array();
  if (!a) return oom(p);
  while (!take(p, ']')) {
    json_t *v;
    if (peek(p) < 0 || value(p, is_const, &v)) {
      if (peek(p) < 0) perr(p, "graphql_syntax", "unterminated list");
      json_decref(a);
      return -1;
    }
    json_array_append_new(a, v);
  }
  *out = a;
  return 0;
}

static int object_value(parser *p, int is_const, json_t **out) {
  p->i++;
  json_t *o = json_object();
  if (!o) return oom(p);
  while (!take(p, '}')) {
    char *k = NULL;
    json_t *v = NULL;
    if (peek(p) < 0) {
      json_decref(o);
      return perr(p, "graphql_syntax", "unterminated object");
    }
    if (name(p, &k, "a field name in an object") || expect(p, ':', "after an object field") ||
        value(p, is_const, &v)) {
      free(k);
      json_decref(o);
      return -1;
    }
    json_object_set_new(o, k, v);
    free(k);
  }
  *out = o;
  return 0;
}

/* A value as JSON; enums become strings. is_const: no variables (defaults). */
static int value(parser *p, int is_const, json_t **out) {
  *out = NULL;
  if (p->depth >= GQL_MAX_DEPTH)
    return perr(p, "graphql_too_large", "values nested deeper than %d", GQL_MAX_DEPTH);
  p->depth++;
  int rc, c = peek(p);
  if (c == '$') {
    rc = is_const ? perr(p, "graphql_syntax", "a default value cannot use a variable")
                  : variable(p, out);
  } else if (c == '"') {
    rc = string_value(p, out);
  } else if (c == '-' || is_digit(c)) {
    rc = number_value(p, out);
  } else if (c == '[') {
    rc = list_value(p, is_const, out);
  } else if (c == '{') {
    rc = object_value(p, is_const, out);
  } else if (is_name_start(c)) {
    char *nm;
    rc = name(p, &nm, "a value");
    if (rc == 0) {
      if (!strcmp(nm, "true"))
        *out = json_true();
      else if (!strcmp(nm, "false"))
        *out = json_false();
      else if (!strcmp(nm, "null"))
        *out = json_null();
      else
        *out = json_string(nm);
      free(nm);
      if (!*out) rc = oom(p);
    }
  } else {
    rc = perr(p, "graphql_syntax", "expected a value");
  }
  p->depth--;
  return rc;
}

/* A type in a variable definition: Name, [Type], either with '!'. Only
 * checked for form; the arguments' own checks say what is acceptable. */
static int type_ref(parser *p) {
  if (p->depth >= GQL_MAX_DEPTH)
    return perr(p, "graphql_too_large", "types nested deeper than %d", GQL_MAX_DEPTH);
  int rc;
  if (take(p, '[')) {
    p->depth++;
    rc = type_ref(p);
    p->depth--;
    if (rc == 0) rc = expect(p, ']', "to close a list type");
  } else {
    char *nm;
    rc = name(p, &nm, "a type");
    free(nm);
  }
  if (rc == 0) take(p, '!');
  return rc;
}

/* ($a: T = default, ...) of the current operation; defaults go to p->defaults. */
static int variable_definitions(parser *p) {
  json_object_clear(p->defaults);
  if (!take(p, '(')) return 0;
  while (!take(p, ')')) {
    char *nm = NULL;
    if (peek(p) < 0) return perr(p, "graphql_syntax", "unterminated variable definitions");
    if (expect(p, '$', "before a variable name") || name(p, &nm, "a variable name") ||
        expect(p, ':', "after a variable name") || type_ref(p)) {
      free(nm);
      return -1;
    }
    if (take(p, '=')) {
      json_t *v;
      if (value(p, 1, &v)) {
        free(nm);
        return -1;
      }
      json_object_set_new(p->defaults, nm, v);
    }
    free(nm);
    if (peek(p) == '@') return perr(p, "graphql_unsupported", "directives are not supported");
  }
  return 0;
}

static void field_clear(gql_field *f) {
  if (!f) return;
  free(f->name);
  free(f->key);
  json_decref(f->args);
  for (size_t i = 0; i < f->nsub; i++) field_clear(&f->sub[i]);
  free(f->sub);
  memset(f, 0, sizeof *f);
}

static int selection_set(parser *p, gql_field **out, size_t *nout);

static int field(parser *p, gql_field *f) {
  memset(f, 0, sizeof *f);
  if (++p->nfields > GQL_MAX_FIELDS)
    return perr(p, "graphql_too_large", "more than %d fields", GQL_MAX_FIELDS);
  char *first;
  if (name(p, &first, "a field name")) return -1;
  if (take(p, ':')) {
    f->key = first;
    if (name(p, &f->name, "a field name after an alias")) return -1;
  } else {
    f->name = first;
    f->key = strdup(first);
    if (!f->key) return oom(p);
  }
  f->args = json_object();
  if (!f->args) return oom(p);
  if (take(p, '(')) {
    while (!take(p, ')')) {
      char *an = NULL;
      json_t *v = NULL;
      if (peek(p) < 0) return perr(p, "graphql_syntax", "unterminated arguments");
      if (name(p, &an, "an argument name") || expect(p, ':', "after an argument name") ||
          value(p, 0, &v)) {
        free(an);
        return -1;
      }
      json_object_set_new(f->args, an, v);
      free(an);
    }
  }
  if (peek(p) == '@') return perr(p, "graphql_unsupported", "directives are not supported");
  if (peek(p) == '{') return selection_set(p, &f->sub, &f->nsub);
  return 0;
}

/* { field ... } at p->i (the caller saw the '{'). */
static int selection_set(parser *p, gql_field **out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (p->depth >= GQL_MAX_DEPTH)
    return perr(p, "graphql_too_large", "selections nested deeper than %d", GQL_MAX_DEPTH);
  p->depth++;
  p->i++;
  gql_field *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  while (!take(p, '}')) {
    int c = peek(p);
    if (c < 0) {
      rc = perr(p, "graphql_syntax", "unterminated selection set");
      break;
    }
    if (c == '.') {
      rc = perr(p, "graphql_unsupported", "fragments are not supported");
      break;
    }
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 4;
      gql_field *g = realloc(v, nc * sizeof *g);
      if (!g) {
        rc = oom(p);
        break;
      }
      v = g;
      cap = nc;
    }
    rc = field(p, &v[n]);
    n++; /* a failed field is partly built: cleared with the others */
    if (rc) break;
  }
  if (rc == 0 && n == 0) rc = perr(p, "graphql_syntax", "empty selection set");
  p->depth--;
  if (rc) {
    for (size_t i = 0; i < n; i++) field_clear(&v[i]);
    free(v);
    return -1;
  }
  *out = v;
  *nout = n;
  return 0;
}

void gql_request_clear(gql_request *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nfields; i++) field_clear(&r->fields[i]);
  free(r->fields);
  memset(r, 0, sizeof *r);
}

int gql_parse(const char *query, size_t len, const json_t *variables, const char *op_name,
              gql_request *out, vn_err *err) {
  memset(out, 0, sizeof *out);
  parser p = {.s = query ? query : "", .n = query ? len : 0, .vars = variables, .err = err};
  p.defaults = json_object();
  if (!p.defaults) return oom(&p);
  int nops = 0, have = 0, rc = 0;
  while (rc == 0 && peek(&p) >= 0) {
    char *opname = NULL;
    if (at_keyword(&p, "query")) {
      p.i += 5;
      if (is_name_start(peek(&p))) rc = name(&p, &opname, "an operation name");
      if (rc == 0) rc = variable_definitions(&p);
      if (rc == 0 && peek(&p) == '@')
        rc = perr(&p, "graphql_unsupported", "directives are not supported");
    } else if (at_keyword(&p, "mutation") || at_keyword(&p, "subscription")) {
      rc = perr(&p, "graphql_unsupported",
                "only queries are served (no mutations or subscriptions)");
    } else if (at_keyword(&p, "fragment")) {
      rc = perr(&p, "graphql_unsupported", "fragments are not supported");
    } else if (peek(&p) == '{') {
      json_object_clear(p.defaults);
    } else {
      rc = perr(&p, "graphql_syntax", "expected \"query\" or '{'");
    }
    gql_request cur = {0};
    if (rc == 0 && peek(&p) != '{') rc = perr(&p, "graphql_syntax", "expected a selection set");
    if (rc == 0) rc = selection_set(&p, &cur.fields, &cur.nfields);
    if (rc == 0) {
      nops++;
      int pick = op_name ? opname && strcmp(opname, op_name) == 0 : 1;
      if (pick && !have) {
        *out = cur;
        have = 1;
      } else {
        gql_request_clear(&cur);
      }
    }
    free(opname);
  }
  json_decref(p.defaults);
  if (rc == 0 && nops == 0) rc = perr(&p, "graphql_syntax", "the query is empty");
  if (rc == 0 && !op_name && nops > 1)
    rc = vn_errh(err, 400, "graphql_bad_request",
                 "the query holds %d operations: name one with operationName", nops);
  if (rc == 0 && !have)
    rc =
        vn_errh(err, 400, "graphql_bad_request", "no operation named \"%s\" in the query", op_name);
  if (rc) gql_request_clear(out);
  return rc;
}

int gql_parse_body(const uint8_t *body, size_t len, gql_request *out, vn_err *err) {
  memset(out, 0, sizeof *out);
  json_error_t je;
  json_t *j = len ? json_loadb((const char *)body, len, 0, &je) : NULL;
  const json_t *q = json_object_get(j, "query");
  const json_t *vars = json_object_get(j, "variables");
  const json_t *op = json_object_get(j, "operationName");
  int rc;
  if (!json_is_object(j) || !json_is_string(q))
    rc = vn_errh(err, 400, "graphql_bad_request",
                 "the body must be a JSON object {\"query\":\"…\",\"variables\":{…}}");
  else if (vars && !json_is_null(vars) && !json_is_object(vars))
    rc = vn_errh(err, 400, "graphql_bad_request", "variables must be a JSON object");
  else if (op && !json_is_null(op) && !json_is_string(op))
    rc = vn_errh(err, 400, "graphql_bad_request", "operationName must be a string");
  else
    rc = gql_parse(json_string_value(q), json_string_length(q), json_is_object(vars) ? vars : NULL,
                   json_is_string(op) ? json_string_value(op) : NULL, out, err);
  json_decref(j);
  return rc;
}

/* ======================================================================
 * 2. Arguments and projection
 * ====================================================================== */

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* A string or a list of strings (at most GQL_MAX_LIST) into a new vector;
 * null is "absent" (0 and *present 0). */
static int str_list(const json_t *v, const char *arg, char ***out, size_t *n, int *present,
                    vn_err *err) {
  *out = NULL;
  *n = 0;
  if (present) *present = 0;
  if (!v || json_is_null(v)) return 0;
  size_t cnt = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
  if (!json_is_string(v) && !json_is_array(v))
    return vn_errh(err, 400, "graphql_bad_argument", "%s takes a list of strings", arg);
  if (cnt > GQL_MAX_LIST)
    return vn_errh(err, 400, "graphql_too_large", "%s holds more than %d values", arg,
                   GQL_MAX_LIST);
  char **o = calloc(cnt ? cnt : 1, sizeof *o);
  if (!o) return vn_errh(err, 500, "oom", "out of memory");
  for (size_t i = 0; i < cnt; i++) {
    const json_t *e = json_is_string(v) ? v : json_array_get(v, i);
    if (!json_is_string(e)) {
      strv_free(o, i);
      return vn_errh(err, 400, "graphql_bad_argument", "%s takes a list of strings", arg);
    }
    o[i] = strdup(json_string_value(e));
    if (!o[i]) {
      strv_free(o, i);
      return vn_errh(err, 500, "oom", "out of memory");
    }
  }
  *out = o;
  *n = cnt;
  if (present) *present = 1;
  return 0;
}

static int tag_filters(const json_t *v, gql_tx_filter *f, vn_err *err) {
  if (!v || json_is_null(v)) return 0;
  if (!json_is_array(v))
    return vn_errh(err, 400, "graphql_bad_argument", "tags takes a list of {name, values}");
  size_t n = json_array_size(v);
  if (n > GQL_MAX_TAG_FILTERS)
    return vn_errh(err, 400, "graphql_too_large", "more than %d tag filters", GQL_MAX_TAG_FILTERS);
  f->tags = calloc(n ? n : 1, sizeof *f->tags);
  if (!f->tags) return vn_errh(err, 500, "oom", "out of memory");
  for (size_t i = 0; i < n; i++) {
    const json_t *t = json_array_get(v, i);
    const json_t *nm = json_object_get(t, "name");
    const json_t *op = json_object_get(t, "op");
    const json_t *match = json_object_get(t, "match");
    if (!json_is_object(t) || !json_is_string(nm))
      return vn_errh(err, 400, "graphql_bad_argument", "each tag filter needs a string name");
    if (op && !json_is_null(op) && !(json_is_string(op) && !strcmp(json_string_value(op), "EQ")))
      return vn_errh(err, 400, "graphql_unsupported", "tag filters only take op: EQ");
    if (match && !json_is_null(match) &&
        !(json_is_string(match) && !strcmp(json_string_value(match), "EXACT")))
      return vn_errh(err, 400, "graphql_unsupported", "tag filters only take match: EXACT");
    const char *k;
    const json_t *kv;
    json_object_foreach((json_t *)t, k, kv) {
      if (strcmp(k, "name") && strcmp(k, "values") && strcmp(k, "op") && strcmp(k, "match"))
        return vn_errh(err, 400, "graphql_unsupported", "tag filter field \"%s\" is not served", k);
    }
    gql_tag_filter *tf = &f->tags[f->ntags];
    tf->name = strdup(json_string_value(nm));
    if (!tf->name) return vn_errh(err, 500, "oom", "out of memory");
    f->ntags++;
    const json_t *vals = json_object_get(t, "values");
    int present;
    if (str_list(vals, "tag values", &tf->values, &tf->nvalues, &present, err)) return -1;
    if (!present)
      return vn_errh(err, 400, "graphql_bad_argument", "tag filter \"%s\" needs values", tf->name);
  }
  return 0;
}

void gql_tx_filter_clear(gql_tx_filter *f) {
  if (!f) return;
  strv_free(f->ids, f->nids);
  strv_free(f->owners, f->nowners);
  strv_free(f->recipients, f->nrecipients);
  for (size_t i = 0; i < f->ntags; i++) {
    free(f->tags[i].name);
    strv_free(f->tags[i].values, f->tags[i].nvalues);
  }
  free(f->tags);
  free(f->after);
  memset(f, 0, sizeof *f);
}

static int tx_arg(const char *k, const json_t *v, gql_tx_filter *f, vn_err *err) {
  if (!strcmp(k, "ids")) return str_list(v, "ids", &f->ids, &f->nids, &f->has_ids, err);
  if (!strcmp(k, "owners")) return str_list(v, "owners", &f->owners, &f->nowners, NULL, err);
  if (!strcmp(k, "recipients"))
    return str_list(v, "recipients", &f->recipients, &f->nrecipients, NULL, err);
  if (!strcmp(k, "tags")) return tag_filters(v, f, err);
  if (!strcmp(k, "first")) {
    if (json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return vn_errh(err, 400, "graphql_bad_argument", "first takes a non-negative integer");
    json_int_t x = json_integer_value(v);
    f->first = x > GQL_MAX_FIRST ? GQL_MAX_FIRST : (int)x;
    return 0;
  }
  if (!strcmp(k, "after")) {
    if (json_is_null(v)) return 0;
    if (!json_is_string(v))
      return vn_errh(err, 400, "graphql_bad_argument", "after takes a cursor string");
    f->after = strdup(json_string_value(v));
    return f->after ? 0 : vn_errh(err, 500, "oom", "out of memory");
  }
  if (!strcmp(k, "sort")) {
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (json_is_null(v)) return 0;
    if (s && (!strcmp(s, "HEIGHT_ASC") || !strcmp(s, "INGESTED_AT_ASC")))
      f->asc = 1;
    else if (s && (!strcmp(s, "HEIGHT_DESC") || !strcmp(s, "INGESTED_AT_DESC")))
      f->asc = 0;
    else
      return vn_errh(err, 400, "graphql_bad_argument",
                     "sort takes HEIGHT_DESC, HEIGHT_ASC, INGESTED_AT_DESC or INGESTED_AT_ASC");
    return 0;
  }
  /* Filters with no meaning here (no chain, no bundles): fine when null. */
  if (!strcmp(k, "block") || !strcmp(k, "bundledIn") || !strcmp(k, "ingested_at")) {
    if (json_is_null(v)) return 0;
    return vn_errh(err, 400, "graphql_unsupported",
                   "the %s filter is not served (this node is not on a chain)", k);
  }
  return vn_errh(err, 400, "graphql_unsupported", "transactions argument \"%s\" is not served", k);
}

int gql_tx_filter_from_args(const json_t *args, int single, gql_tx_filter *f, vn_err *err) {
  memset(f, 0, sizeof *f);
  f->first = GQL_DEFAULT_FIRST;
  int rc = 0;
  if (args && !json_is_object(args))
    rc = vn_errh(err, 400, "graphql_bad_argument", "arguments must be an object");
  if (single && rc == 0) {
    const json_t *id = json_object_get(args, "id");
    if (json_object_size(args) != 1 || !json_is_string(id))
      rc = vn_errh(err, 400, "graphql_bad_argument", "transaction takes one argument: id");
    else
      rc = str_list(id, "id", &f->ids, &f->nids, &f->has_ids, err);
    f->first = 1;
  } else if (rc == 0) {
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)args, k, v) {
      if ((rc = tx_arg(k, v, f, err))) break;
    }
  }
  if (rc) gql_tx_filter_clear(f);
  return rc;
}

/* "0x" addresses compare without case (EIP-55 is only a checksum). */
static int same_address(const char *x, const char *y) {
  if (x[0] == '0' && (x[1] == 'x' || x[1] == 'X')) return strcasecmp(x, y) == 0;
  return strcmp(x, y) == 0;
}

static int tag_has(const item *it, const gql_tag_filter *tf) {
  size_t nl = strlen(tf->name);
  for (size_t i = 0; i < it->ntags; i++) {
    const item_tag *t = &it->tags[i];
    if (t->name_len != nl || memcmp(t->name, tf->name, nl) != 0) continue;
    for (size_t k = 0; k < tf->nvalues; k++)
      if (strlen(tf->values[k]) == t->value_len && !memcmp(tf->values[k], t->value, t->value_len))
        return 1;
  }
  return 0;
}

int gql_item_matches(const gql_tx_filter *f, const item *it, const char *owner) {
  if (f->nowners) {
    size_t i = 0;
    while (i < f->nowners && !same_address(owner, f->owners[i])) i++;
    if (i == f->nowners) return 0;
  }
  if (f->nrecipients) {
    char target[ITEM_ID_LEN + 1] = "";
    if (it->has_target) b64url_encode(it->target, 32, target, sizeof target);
    size_t i = 0;
    while (i < f->nrecipients && strcmp(target, f->recipients[i])) i++;
    if (i == f->nrecipients) return 0;
  }
  for (size_t i = 0; i < f->ntags; i++)
    if (!tag_has(it, &f->tags[i])) return 0;
  return 1;
}

json_t *gql_project(const json_t *value, const gql_field *sel, size_t nsel) {
  if (!value) return json_null();
  if (nsel == 0) return json_incref((json_t *)value);
  if (json_is_array(value)) {
    json_t *a = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(value, i, e) json_array_append_new(a, gql_project(e, sel, nsel));
    return a;
  }
  if (!json_is_object(value)) return json_null();
  json_t *o = json_object();
  for (size_t i = 0; i < nsel; i++)
    json_object_set_new(o, sel[i].key,
                        gql_project(json_object_get(value, sel[i].name), sel[i].sub, sel[i].nsub));
  return o;
}

/* ======================================================================
 * 3. Answering from the store
 * ====================================================================== */

typedef struct cand {
  char id[ITEM_ID_LEN + 1];
  int64_t ms;
  int self; /* the node's own Scheduler-Location, signed when needed */
} cand;

typedef struct cands {
  cand *v;
  size_t n, cap;
  int full; /* GQL_MAX_CANDIDATES reached */
} cands;

static int cand_add(cands *c, const char *id, int64_t ms, int self) {
  if (c->n >= GQL_MAX_CANDIDATES) {
    c->full = 1;
    return 1;
  }
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 16;
    cand *v = realloc(c->v, nc * sizeof *v);
    if (!v) return -1;
    c->v = v;
    c->cap = nc;
  }
  cand *x = &c->v[c->n++];
  snprintf(x->id, sizeof x->id, "%s", id);
  x->ms = ms;
  x->self = self;
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_process(void *ctx, const char *pid, int64_t spawn_ms) {
  return cand_add(ctx, pid, spawn_ms, 0) != 0;
}

static int add_module(void *ctx, const char *id, const char *format) {
  (void)format;
  return cand_add(ctx, id, -1, 0) != 0; /* the time is looked up after the walk */
}

/* The single value of the first filter on tag `name`, or NULL. */
static const gql_tag_filter *tag_filter(const gql_tx_filter *f, const char *name) {
  for (size_t i = 0; i < f->ntags; i++)
    if (!strcmp(f->tags[i].name, name)) return &f->tags[i];
  return NULL;
}

/* Candidates by Type, for a query without ids. */
static int gather_by_type(api *a, store *s, const gql_tx_filter *f, cands *c, vn_err *e) {
  const gql_tag_filter *type = tag_filter(f, "Type");
  if (!type)
    return vn_errh(e, 400, "graphql_unsupported",
                   "transactions needs ids, or a Type tag filter (Process, Module or "
                   "Scheduler-Location): this node is not a full gateway");
  const gql_tag_filter *nf = tag_filter(f, "Name");
  const char *name = nf && nf->nvalues == 1 ? nf->values[0] : NULL;
  for (size_t t = 0; t < type->nvalues; t++) {
    const char *ty = type->values[t];
    if (!strcmp(ty, "Process")) {
      for (size_t o = 0; o < (f->nowners ? f->nowners : 1); o++)
        if (store_process_find(s, f->nowners ? f->owners[o] : NULL, name, add_process, c, e))
          return -1;
    } else if (!strcmp(ty, "Module")) {
      size_t from = c->n;
      if (store_module_each(s, add_module, c, e)) return -1;
      for (size_t i = from; i < c->n; i++)
        if (store_item_received(s, c->v[i].id, &c->v[i].ms, e) < 0) return -1;
    } else if (!strcmp(ty, "Scheduler-Location")) {
      size_t o = 0;
      while (o < f->nowners && !same_address(node_address(a->n), f->owners[o])) o++;
      if (!f->nowners || o < f->nowners) cand_add(c, "", now_ms(), 1);
    } else {
      return vn_errh(e, 400, "graphql_unsupported",
                     "without ids, transactions are served for Type Process, Module or "
                     "Scheduler-Location, not \"%s\"",
                     ty);
    }
  }
  return 0;
}

static int gather_by_ids(store *s, const gql_tx_filter *f, cands *c, vn_err *e) {
  for (size_t i = 0; i < f->nids; i++) {
    if (!api_is_id(f->ids[i])) continue; /* no such item, as on a gateway */
    int64_t ms = 0;
    int rc = store_item_received(s, f->ids[i], &ms, e);
    if (rc == 0) { /* modules loaded from files may only be in the modules table */
      char *format = NULL;
      rc = store_module_get(s, f->ids[i], &format, NULL, NULL, e);
      free(format);
    }
    if (rc < 0) return -1;
    if (rc == 1 && cand_add(c, f->ids[i], ms, 0) < 0)
      return vn_errh(e, 500, "oom", "out of memory");
  }
  return 0;
}

static int by_time_asc(const void *x, const void *y) {
  const cand *a = x, *b = y;
  if (a->ms != b->ms) return a->ms < b->ms ? -1 : 1;
  return strcmp(a->id, b->id);
}

static int by_time_desc(const void *x, const void *y) {
  return by_time_asc(y, x);
}

/* The node's Scheduler-Location: ao-scheduler-utils reads its Url and
 * Time-To-Live tags to find where the scheduler `owner` is served. */
static item *self_location(api *a, vn_err *e) {
  item *it = item_new();
  if (!it) {
    vn_errf(e, "oom", "out of memory");
    return NULL;
  }
  if (item_add_tag(it, "Data-Protocol", "ao", e) || item_add_tag(it, "Variant", "ao.TN.1", e) ||
      item_add_tag(it, "Type", "Scheduler-Location", e) ||
      item_add_tag(it, "Url", config_base_url(a->c), e) ||
      item_add_tag(it, "Time-To-Live", GQL_SCHEDULER_TTL_MS, e) ||
      item_sign(it, node_key(a->n), e)) {
    item_free(it);
    return NULL;
  }
  return it;
}

static item *load(api *a, store *s, const cand *c, vn_err *e) {
  if (c->self) return self_location(a, e);
  uint8_t *raw = NULL;
  size_t len = 0;
  int rc = store_item_get(s, c->id, &raw, &len, e);
  if (rc == 0) {
    char *format = NULL;
    rc = store_module_get(s, c->id, &format, &raw, &len, e);
    free(format);
  }
  item *it = NULL;
  if (rc == 1) {
    vn_err de = {0};
    it = item_decode(raw, len, &de);
    if (!it) vn_errh(e, 500, "store_corrupt", "stored item %s does not decode: %s", c->id, de.msg);
  } else if (rc == 0) {
    vn_errh(e, 500, "store_corrupt", "item %s went missing", c->id);
  }
  free(raw);
  return it;
}

/* The gateway's Transaction object for an item. vmnode is not on a chain:
 * fee and quantity are zero, the block has height 0 and the time the node
 * stored the item. */
static json_t *tx_node(const item *it, const char *owner, int64_t ms) {
  char *sig = b64url_encode_alloc(it->sig, it->sig_len);
  char *key = b64url_encode_alloc(it->owner, it->owner_len);
  char target[ITEM_ID_LEN + 1] = "", anchor[ITEM_ID_LEN + 1] = "", size[24];
  if (it->has_target) b64url_encode(it->target, 32, target, sizeof target);
  if (it->has_anchor) b64url_encode(it->anchor, 32, anchor, sizeof anchor);
  snprintf(size, sizeof size, "%zu", it->data_len);
  json_t *tags = json_array();
  for (size_t i = 0; i < it->ntags; i++) {
    const item_tag *t = &it->tags[i];
    json_t *tj =
        json_pack("{s:s%,s:s%}", "name", t->name, t->name_len, "value", t->value, t->value_len);
    if (tj) json_array_append_new(tags, tj);
  }
  const item_tag *ct = item_tag_find(it, "Content-Type");
  json_t *type = ct ? json_stringn(ct->value, ct->value_len) : NULL;
  json_int_t secs = (json_int_t)(ms > 0 ? ms / 1000 : 0);
  json_t *node = NULL;
  if (sig && key && tags)
    node = json_pack(
        "{s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:o},s:o,"
        "s:{s:s,s:I,s:I,s:s},s:n,s:n,s:I}",
        "id", it->id, "anchor", anchor, "signature", sig, "recipient", target, "owner", "address",
        owner, "key", key, "fee", "winston", "0", "ar", "0.000000000000", "quantity", "winston",
        "0", "ar", "0.000000000000", "data", "size", size, "type", type ? type : json_null(),
        "tags", tags, "block", "id", "", "height", (json_int_t)0, "timestamp", secs, "previous", "",
        "parent", "bundledIn", "ingested_at", secs);
  else
    json_decref(tags);
  free(sig);
  free(key);
  return node;
}

/* The Connection {pageInfo, edges} for a filter. */
static int find(api *a, store *s, const gql_tx_filter *f, json_t **out, vn_err *e) {
  cands c = {0};
  int rc = f->has_ids ? gather_by_ids(s, f, &c, e) : gather_by_type(a, s, f, &c, e);
  json_t *edges = json_array();
  int more = c.full;
  if (rc == 0 && c.n) {
    qsort(c.v, c.n, sizeof *c.v, f->asc ? by_time_asc : by_time_desc);
    size_t k = 0; /* drop repeats (an id asked twice, an owner listed twice) */
    for (size_t i = 0; i < c.n; i++)
      if (k == 0 || strcmp(c.v[k - 1].id, c.v[i].id)) c.v[k++] = c.v[i];
    c.n = k;
  }
  size_t start = 0;
  if (rc == 0 && f->after) {
    while (start < c.n && strcmp(c.v[start].id, f->after)) start++;
    if (start == c.n)
      rc = vn_errh(e, 400, "graphql_bad_argument",
                   "after: not a cursor of this query's results (it is an edge's cursor)");
    start++;
  }
  int count = 0;
  for (size_t i = start; rc == 0 && i < c.n; i++) {
    item *it = load(a, s, &c.v[i], e);
    if (!it) {
      rc = -1;
      break;
    }
    char owner[ITEM_ADDR_MAX] = "";
    item_owner_address(it, owner);
    if (gql_item_matches(f, it, owner)) {
      if (count == f->first) {
        more = 1;
        item_free(it);
        break;
      }
      json_t *node = tx_node(it, owner, c.v[i].ms);
      json_t *edge = node ? json_pack("{s:s,s:o}", "cursor", it->id, "node", node) : NULL;
      if (!edge)
        rc = vn_errh(e, 500, "oom", "out of memory");
      else
        json_array_append_new(edges, edge);
      count++;
    }
    item_free(it);
  }
  free(c.v);
  if (rc) {
    json_decref(edges);
    return -1;
  }
  *out = json_pack("{s:{s:b},s:o}", "pageInfo", "hasNextPage", more, "edges", edges);
  return *out ? 0 : vn_errh(e, 500, "oom", "out of memory");
}

static int resolve(api *a, store *s, const gql_field *fd, json_t **out, vn_err *e) {
  int single = !strcmp(fd->name, "transaction");
  if (!single && strcmp(fd->name, "transactions"))
    return vn_errh(e, 400, "graphql_unsupported",
                   "field \"%s\" is not served: this node answers transactions(...) and "
                   "transaction(id:)",
                   fd->name);
  if (!fd->nsub) return vn_errh(e, 400, "graphql_syntax", "%s needs a selection set", fd->name);
  gql_tx_filter f;
  if (gql_tx_filter_from_args(fd->args, single, &f, e)) return -1;
  json_t *conn = NULL;
  int rc = find(a, s, &f, &conn, e);
  gql_tx_filter_clear(&f);
  if (rc) return -1;
  if (!single) {
    *out = conn;
    return 0;
  }
  json_t *edge = json_array_get(json_object_get(conn, "edges"), 0);
  json_t *node = json_object_get(edge, "node");
  *out = node ? json_incref(node) : json_null();
  json_decref(conn);
  return 0;
}

/* {"errors":[{"message","extensions":{"code"}}]}, as GraphQL servers answer. */
static void gql_error(api_resp *o, const vn_err *e) {
  int status = e->http >= 400 && e->http <= 599 ? e->http : 400;
  const char *code = e->code ? e->code : "internal_error";
  json_t *j =
      json_pack("{s:[{s:s,s:{s:s}}]}", "errors", "message", e->msg, "extensions", "code", code);
  if (!j) /* a message that is not UTF-8 */
    j = json_pack("{s:[{s:s,s:{s:s}}]}", "errors", "message", "(message not UTF-8)", "extensions",
                  "code", code);
  api_resp_json(o, status, j);
}

void api_graphql(api *a, const uint8_t *body, size_t len, api_resp *o) {
  gql_request rq;
  vn_err e = {0};
  if (gql_parse_body(body, len, &rq, &e)) {
    gql_error(o, &e);
    return;
  }
  store *s = node_store_get(a->n, &e);
  if (!s) {
    if (!e.http) e.http = 503;
    gql_request_clear(&rq);
    gql_error(o, &e);
    return;
  }
  json_t *data = json_object();
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < rq.nfields; i++) {
    const gql_field *fd = &rq.fields[i];
    json_t *v = NULL;
    rc = resolve(a, s, fd, &v, &e);
    if (rc == 0) json_object_set_new(data, fd->key, gql_project(v, fd->sub, fd->nsub));
    json_decref(v);
  }
  node_store_put(a->n, s);
  gql_request_clear(&rq);
  if (rc) {
    json_decref(data);
    gql_error(o, &e);
    return;
  }
  api_resp_json(o, 200, json_pack("{s:o}", "data", data));
}
