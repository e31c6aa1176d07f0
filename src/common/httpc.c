/* httpc.c - see httpc.h.
 *
 * A fresh easy handle per request (simple and thread safe), all sharing one
 * connection cache through a CURLSH, so a client making thousands of calls
 * (verify-log walks a log request by request) reuses keep-alive connections
 * instead of leaving thousands of sockets in TIME_WAIT. libcurl's global init
 * is not thread safe, so it runs once under pthread_once. */
#include "common/httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 10000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static CURLSH *g_share;
static pthread_mutex_t g_share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u) {
  (void)h;
  (void)a;
  (void)u;
  pthread_mutex_lock(&g_share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u) {
  (void)h;
  (void)u;
  pthread_mutex_unlock(&g_share_mu[d]);
}

static void curl_init(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (curl_init_rc != CURLE_OK) return;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&g_share_mu[i], NULL);
  g_share = curl_share_init();
  if (g_share) {
    curl_share_setopt(g_share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(g_share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(g_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(g_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  }
}

typedef struct sink {
  char *p;
  size_t len, cap, max;
  int too_large, oom;
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg) {
  sink *s = arg;
  size_t n = size * nmemb;
  if (n > s->max - s->len) {
    s->too_large = 1;
    return 0; /* abort the transfer */
  }
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n + 1) cap *= 2;
    char *p = realloc(s->p, cap);
    if (!p) {
      s->oom = 1;
      return 0;
    }
    s->p = p;
    s->cap = cap;
  }
  memcpy(s->p + s->len, data, n);
  s->len += n;
  return n;
}

/* "http://user:pw@host:8080/a/b" -> "http://host:8080": for messages, with
 * no credentials and no path. */
static void origin_of(const char *url, char *out, size_t n) {
  const char *s = strstr(url, "://");
  const char *host = s ? s + 3 : url;
  const char *end = host + strcspn(host, "/?#");
  const char *at = memchr(host, '@', (size_t)(end - host));
  if (at) host = at + 1;
  snprintf(out, n, "%.*s%.*s", s ? (int)(s + 3 - url) : 0, url,
           (int)(end - host > 200 ? 200 : end - host), host);
}

static int is_method(const char *m, const char *want) {
  return !strcmp(m, want);
}

/* Copy a header of the last response, or NULL. */
static char *header_copy(CURL *h, const char *name) {
  struct curl_header *hd;
  if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK) return NULL;
  return strdup(hd->value);
}

static int fail(vn_err *err, CURLcode rc, CURL *h, const sink *s, const httpc_req *req,
                const char *errbuf) {
  char origin[256];
  origin_of(req->url, origin, sizeof origin);
  const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  long oserr = 0;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
  curl_off_t connected = 0;
  curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
  if (s->too_large || rc == CURLE_FILESIZE_EXCEEDED)
    return vn_errh(err, 502, "response_too_large", "the answer from %s is larger than %zu bytes",
                   origin, s->max);
  if (s->oom)
    return vn_errh(err, 500, "out_of_memory", "out of memory reading the answer from %s", origin);
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return vn_errf(err, "bad_url", "not an http:// or https:// URL: %.200s", req->url);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return vn_errh(err, 502, "node_unreachable",
                     "cannot reach node at %s (%s): is `vmnode serve` running? set --node or "
                     "VMNODE_NODE",
                     origin, oserr ? strerror((int)oserr) : curl_easy_strerror(rc));
    case CURLE_OPERATION_TIMEDOUT:
      if (!connected)
        return vn_errh(err, 502, "node_unreachable",
                       "cannot reach node at %s (connection timed out): is `vmnode serve` "
                       "running? set --node or VMNODE_NODE",
                       origin);
      return vn_errh(err, 504, "node_timeout", "node at %s did not answer within %d ms", origin,
                     req->timeout_ms);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return vn_errh(err, 502, "node_unreachable",
                     "node at %s closed the connection before a whole answer (%s)", origin, why);
    default:
      return vn_errh(err, 502, "http_failed", "request to %s failed: %s", origin, why);
  }
}

int httpc_do(const httpc_req *req, httpc_resp *out, vn_err *err) {
  memset(out, 0, sizeof *out);
  if (!req->url || (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8)))
    return vn_errf(err, "bad_url", "not an http:// or https:// URL: %.200s",
                   req->url ? req->url : "(none)");
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return vn_errh(err, 500, "http_failed", "libcurl init failed: %s",
                   curl_easy_strerror(curl_init_rc));
  CURL *h = curl_easy_init();
  if (!h) return vn_errh(err, 500, "out_of_memory", "libcurl: cannot create a handle");

  const char *method = req->method ? req->method : "GET";
  sink s = {.max = req->max_size ? req->max_size : HTTPC_MAX_RESPONSE};
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *hdrs = NULL, *t;
  int ok = 1;
#define ADD_HEADER(line)                   \
  if ((t = curl_slist_append(hdrs, line))) \
    hdrs = t;                              \
  else                                     \
    ok = 0;

  /* No "Expect: 100-continue" round trip before a body; no form-encoded
   * Content-Type guessed for a raw body. */
  ADD_HEADER("Expect:");
  if (req->content_type) {
    char *ct = NULL;
    if (asprintf(&ct, "Content-Type: %s", req->content_type) < 0) ct = NULL;
    if (ct) {
      ADD_HEADER(ct);
      free(ct);
    } else {
      ok = 0;
    }
  } else {
    ADD_HEADER("Content-Type:");
  }
  for (const char *const *x = req->headers; x && *x; x++) ADD_HEADER(*x);
#undef ADD_HEADER
  if (!ok) {
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return vn_errh(err, 500, "out_of_memory", "out of memory");
  }

  curl_easy_setopt(h, CURLOPT_URL, req->url);
  if (g_share) curl_easy_setopt(h, CURLOPT_SHARE, g_share);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "vmnode");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s.max);
  long connect_ms = CONNECT_TIMEOUT_MS;
  if (req->timeout_ms > 0) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->timeout_ms < connect_ms) connect_ms = req->timeout_ms;
  }
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);

  if (is_method(method, "GET") && !req->body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (is_method(method, "HEAD")) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    if (req->body || !is_method(method, "DELETE")) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->len : 0));
    }
    if (!is_method(method, "POST")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }

  CURLcode rc = curl_easy_perform(h);
  int ret = 0;
  if (rc != CURLE_OK) {
    ret = fail(err, rc, h, &s, req, errbuf);
    free(s.p);
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    if (!s.p) s.p = malloc(1);
    char *ct = NULL, *loc = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
    out->body = s.p;
    out->len = s.len;
    out->content_type = ct ? strdup(ct) : NULL;
    out->location = loc ? strdup(loc) : header_copy(h, "Location");
    if (!out->body || (ct && !out->content_type)) {
      httpc_resp_free(out);
      ret = vn_errh(err, 500, "out_of_memory", "out of memory");
    } else {
      out->body[out->len] = 0;
    }
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return ret;
}

int httpc_request(const char *method, const char *url, const char *content_type,
                  const uint8_t *body, size_t len, httpc_resp *out, int timeout_ms, vn_err *err) {
  httpc_req req = {.method = method,
                   .url = url,
                   .content_type = content_type,
                   .body = body,
                   .len = len,
                   .timeout_ms = timeout_ms};
  return httpc_do(&req, out, err);
}

void httpc_resp_free(httpc_resp *r) {
  if (!r) return;
  free(r->body);
  free(r->location);
  free(r->content_type);
  memset(r, 0, sizeof *r);
}
