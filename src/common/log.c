/* log.c - see log.h.
 *
 * A line is built in memory (a growable buffer), then written with one
 * fwrite + fflush while holding the logger's mutex, so lines from different
 * threads never interleave. JSON lines are made by re-reading the logfmt
 * field text: callers write one format, the logger converts. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_level_min = VN_LOG_INFO;
static atomic_int log_json = 0;
static FILE *log_out; /* NULL = stderr; guarded by log_mu */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && !strcmp(name, level_names[i])) return i;
  return -1;
}

int log_init(const char *format, const char *level, FILE *out, vn_err *err) {
  int json = 0, lvl = VN_LOG_INFO;
  if (format && !strcmp(format, "json"))
    json = 1;
  else if (format && strcmp(format, "logfmt"))
    return vn_errf(err, "config_bad_value", "logFormat: expected logfmt or json, got \"%.32s\"",
                   format);
  if (level && (lvl = log_level_parse(level)) < 0)
    return vn_errf(err, "config_bad_value",
                   "logLevel: expected debug, info, warn or error, got \"%.32s\"", level);
  pthread_mutex_lock(&log_mu);
  atomic_store(&log_json, json);
  atomic_store(&log_level_min, lvl);
  log_out = out;
  pthread_mutex_unlock(&log_mu);
  return 0;
}

int log_enabled(vn_log_level level) {
  return (int)level >= atomic_load(&log_level_min);
}

/* ---- a growable line buffer; a failed allocation marks it bad ---- */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int bad;
  char small[512];
} sbuf;

static void sb_init(sbuf *b) {
  b->p = b->small;
  b->len = 0;
  b->cap = sizeof b->small;
  b->bad = 0;
}

static void sb_free(sbuf *b) {
  if (b->p != b->small) free(b->p);
}

static int sb_grow(sbuf *b, size_t more) {
  if (b->bad) return -1;
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap * 2;
  while (cap < b->len + more) cap *= 2;
  char *n = b->p == b->small ? malloc(cap) : realloc(b->p, cap);
  if (!n) {
    b->bad = 1;
    return -1;
  }
  if (b->p == b->small) memcpy(n, b->small, b->len);
  b->p = n;
  b->cap = cap;
  return 0;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (sb_grow(b, n) < 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void sb_puts(sbuf *b, const char *s) {
  sb_put(b, s, strlen(s));
}

static void sb_putc(sbuf *b, char c) {
  sb_put(b, &c, 1);
}

/* ---- encoders ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return len;
}

/* s[0..n) as the inside of a JSON string; bad UTF-8 becomes U+FFFD. */
static void put_json_chars(sbuf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c >= 0x80) {
      size_t l = utf8_len(p + i, n - i);
      if (l) {
        sb_put(b, s + i, l);
        i += l;
      } else {
        sb_puts(b, "\\ufffd");
        i++;
      }
      continue;
    }
    switch (c) {
      case '"':
        sb_puts(b, "\\\"");
        break;
      case '\\':
        sb_puts(b, "\\\\");
        break;
      case '\n':
        sb_puts(b, "\\n");
        break;
      case '\r':
        sb_puts(b, "\\r");
        break;
      case '\t':
        sb_puts(b, "\\t");
        break;
      default:
        if (c < 0x20) {
          char u[8];
          snprintf(u, sizeof u, "\\u%04x", c);
          sb_puts(b, u);
        } else {
          sb_putc(b, (char)c);
        }
    }
    i++;
  }
}

static void put_json_str(sbuf *b, const char *s, size_t n) {
  sb_putc(b, '"');
  put_json_chars(b, s, n);
  sb_putc(b, '"');
}

/* Field text for a logfmt line: control characters escaped so the event
 * stays on one line. */
static void put_logfmt_text(sbuf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n')
      sb_puts(b, "\\n");
    else if (c == '\r')
      sb_puts(b, "\\r");
    else if (c == '\t')
      sb_puts(b, "\\t");
    else if (c < 0x20 || c == 0x7f) {
      char x[8];
      snprintf(x, sizeof x, "\\x%02x", c);
      sb_puts(b, x);
    } else
      sb_putc(b, (char)c);
  }
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Turn logfmt pairs into ,"key":"value" members. A quoted value may hold
 * spaces and \" \\ \n \t \r escapes; an unterminated one runs to the end. */
static void put_json_fields(sbuf *b, const char *s, size_t n) {
  size_t i = 0;
  sbuf val;
  sb_init(&val);
  while (i < n) {
    while (i < n && is_space(s[i])) i++;
    if (i >= n) break;
    size_t k = i;
    while (i < n && s[i] != '=' && !is_space(s[i])) i++;
    sb_putc(b, ',');
    if (i == k)
      put_json_str(b, "_", 1);
    else
      put_json_str(b, s + k, i - k);
    sb_putc(b, ':');
    if (i >= n || s[i] != '=') {
      sb_puts(b, "true");
      continue;
    }
    i++; /* '=' */
    if (i < n && s[i] == '"') {
      val.len = 0;
      for (i++; i < n && s[i] != '"'; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
          char e = s[++i];
          c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
          if (e != 'n' && e != 't' && e != 'r' && e != '"' && e != '\\') sb_putc(&val, '\\');
        }
        sb_putc(&val, c);
      }
      if (i < n) i++; /* closing quote */
      put_json_str(b, val.bad ? "" : val.p, val.bad ? 0 : val.len);
    } else {
      size_t v = i;
      while (i < n && !is_space(s[i])) i++;
      put_json_str(b, s + v, i - v);
    }
  }
  sb_free(&val);
}

static void timestamp(char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void vlog(vn_log_level level, const char *event, const char *fmt, va_list ap) {
  if ((int)level < VN_LOG_DEBUG || level > VN_LOG_ERROR) level = VN_LOG_ERROR;
  if (!log_enabled(level)) return;
  char ts[32];
  timestamp(ts);
  if (!event) event = "log";

  /* The caller's fields, formatted. */
  char small[512], *kv = small;
  int kn = 0;
  if (fmt) {
    va_list ap2;
    va_copy(ap2, ap);
    kn = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (kn < 0) {
      kn = 0;
    } else if ((size_t)kn >= sizeof small) {
      kv = malloc((size_t)kn + 1);
      if (kv)
        vsnprintf(kv, (size_t)kn + 1, fmt, ap);
      else
        kv = small, kn = sizeof small - 1;
    }
  }

  sbuf b;
  sb_init(&b);
  if (atomic_load(&log_json)) {
    sb_puts(&b, "{\"ts\":\"");
    sb_puts(&b, ts);
    sb_puts(&b, "\",\"level\":\"");
    sb_puts(&b, level_names[level]);
    sb_puts(&b, "\",\"event\":");
    put_json_str(&b, event, strlen(event));
    put_json_fields(&b, kv, (size_t)kn);
    sb_puts(&b, "}\n");
  } else {
    sb_puts(&b, "ts=");
    sb_puts(&b, ts);
    sb_puts(&b, " level=");
    sb_puts(&b, level_names[level]);
    sb_puts(&b, " event=");
    put_logfmt_text(&b, event, strlen(event));
    if (kn > 0) {
      sb_putc(&b, ' ');
      put_logfmt_text(&b, kv, (size_t)kn);
    }
    sb_putc(&b, '\n');
  }
  if (kv != small) free(kv);
  if (!b.bad) {
    pthread_mutex_lock(&log_mu);
    FILE *out = log_out ? log_out : stderr;
    fwrite(b.p, 1, b.len, out);
    fflush(out);
    pthread_mutex_unlock(&log_mu);
  }
  sb_free(&b);
}

void vn_log(vn_log_level level, const char *event, const char *fmt_kv, ...) {
  va_list ap;
  va_start(ap, fmt_kv);
  vlog(level, event, fmt_kv, ap);
  va_end(ap);
}

#define LEVEL_FN(fn, lvl)                               \
  void fn(const char *event, const char *fmt_kv, ...) { \
    va_list ap;                                         \
    va_start(ap, fmt_kv);                               \
    vlog(lvl, event, fmt_kv, ap);                       \
    va_end(ap);                                         \
  }
LEVEL_FN(log_debug, VN_LOG_DEBUG)
LEVEL_FN(log_info, VN_LOG_INFO)
LEVEL_FN(log_warn, VN_LOG_WARN)
LEVEL_FN(log_error, VN_LOG_ERROR)
#undef LEVEL_FN

const char *log_quote(const char *s, char *buf, size_t n) {
  if (!s) return "null";
  int plain = *s != 0;
  for (const char *p = s; *p && plain; p++)
    if (is_space(*p) || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20) plain = 0;
  if (plain) return s;
  if (n < 8) return "\"...\"";
  size_t o = 0;
  buf[o++] = '"';
  for (const char *p = s; *p; p++) {
    char e = *p == '"'    ? '"'
             : *p == '\\' ? '\\'
             : *p == '\n' ? 'n'
             : *p == '\t' ? 't'
             : *p == '\r' ? 'r'
                          : 0;
    size_t need = e ? 2 : 1;
    if (o + need + 5 > n) { /* keep room for ..." and the NUL */
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (e) {
      buf[o++] = '\\';
      buf[o++] = e;
    } else {
      buf[o++] = *p;
    }
  }
  buf[o++] = '"';
  buf[o] = 0;
  return buf;
}
