/* api.c - the HTTP server: libmicrohttpd, one thread per connection.
 *
 * Request lifecycle (libmicrohttpd calls on_request several times per request):
 *   1. headers in: parse the route and the query (route.c); pick the body
 *      cap for the route (maxItemSize for POST /, 1 MiB for JSON bodies,
 *      nothing kept for the others); a Content-Length over the cap is
 *      answered 413 at once, so the client never sends the body;
 *   2. body chunks: appended up to the cap; past it the rest is read and
 *      dropped (chunked uploads have no Content-Length to refuse early);
 *   3. request complete: run the handler (handlers.c) and send its answer
 *      with the headers every answer carries (Content-Type, CORS).
 * Every request is counted in vn_metrics by route and status class, with
 * its latency. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/internal.h"
#include "common/log.h"
#include "common/metrics.h"

#define API_JSON_BODY_MAX (1u << 20) /* dry-run, graphql and other JSON bodies */
#define API_CONNECTION_LIMIT 1000
#define API_CONNECTION_TIMEOUT_S 60

typedef struct req {
  api_route r;
  uint64_t t0;   /* metrics_now_ns() when the headers arrived */
  size_t limit;  /* body bytes kept for this route; 0 = none */
  uint8_t *body; /* malloc'd */
  size_t len, cap;
  int too_large; /* the body went past limit */
} req;

static const char *route_message(const api_route *r) {
  const char *c = r->error ? r->error : "";
  if (!strcmp(c, "not_found")) return "no such route";
  if (!strcmp(c, "method_not_allowed")) return "this route does not take that method";
  if (!strcmp(c, "bad_id")) return "an id in the request is not a 43-character base64url id";
  if (!strcmp(c, "bad_nonce")) return "a nonce must be a decimal integer from 0 to 2^53";
  if (!strcmp(c, "bad_key")) return "a cache key is 1 to 1024 bytes";
  if (!strcmp(c, "bad_limit")) return "limit must be an integer from 1 (at most 1000 are served)";
  if (!strcmp(c, "bad_sort")) return "sort must be ASC or DESC";
  if (!strcmp(c, "bad_cursor")) return "from and to take a cursor from /results or a nonce";
  if (!strcmp(c, "bad_timeout")) return "timeout-ms must be a non-negative integer";
  return "bad request";
}

static const char *allow_for(const api_route *r) {
  if (r->id == AR_SUBMIT || r->id == AR_SU_INFO) return "GET, HEAD, POST, OPTIONS";
  if (r->id == AR_DRYRUN || r->id == AR_GRAPHQL) return "POST, OPTIONS";
  return "GET, HEAD, OPTIONS";
}

static void count(const req *q, int status) {
  int m = q->r.metric >= 0 && q->r.metric < MR_COUNT ? q->r.metric : MR_OTHER;
  int cls = status / 100;
  if (cls < 1 || cls > 5) cls = 5;
  atomic_fetch_add_explicit(&vn_metrics.http_requests[m][cls], 1, memory_order_relaxed);
  metrics_observe(&vn_metrics.http_latency[m], metrics_now_ns() - q->t0);
}

/* Queue o (consumed) with the common headers. */
static enum MHD_Result send_resp(struct MHD_Connection *c, req *q, api_resp *o) {
  struct MHD_Response *resp;
  if (o->body && o->len) {
    resp = MHD_create_response_from_buffer(o->len, o->body, MHD_RESPMEM_MUST_FREE);
    if (resp) o->body = NULL;
  } else {
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (!resp) {
    api_resp_clear(o);
    return MHD_NO;
  }
  if (o->status != 204)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            o->ctype ? o->ctype : "application/json");
  MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
  MHD_add_response_header(resp, "Access-Control-Allow-Headers", "*, Authorization, Content-Type");
  MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Location");
  if (q->r.id == AR_OPTIONS) MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
  if (o->status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow_for(&q->r));
  if (o->location) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, o->location);
  enum MHD_Result rc = MHD_queue_response(c, (unsigned)o->status, resp);
  MHD_destroy_response(resp);
  count(q, o->status);
  api_resp_clear(o);
  return rc;
}

static enum MHD_Result on_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
  (void)kind;
  api_route_query(cls, key, value ? value : "");
  return MHD_YES;
}

static int append(req *q, const char *data, size_t n) {
  if (q->too_large) return 0;
  if (n > q->limit - q->len) {
    q->too_large = 1;
    free(q->body);
    q->body = NULL;
    q->len = q->cap = 0;
    return 0;
  }
  if (q->len + n > q->cap) {
    size_t cap = q->cap ? q->cap : 4096;
    while (cap < q->len + n) cap *= 2;
    if (cap > q->limit) cap = q->limit;
    uint8_t *b = realloc(q->body, cap);
    if (!b) return -1;
    q->body = b;
    q->cap = cap;
  }
  memcpy(q->body + q->len, data, n);
  q->len += n;
  return 0;
}

static void too_large(api *a, req *q, api_resp *o) {
  api_resp_error(o, 413, "body_too_large", "the request body is over the %zu-byte limit%s",
                 q->limit, q->r.id == AR_SUBMIT ? " (maxItemSize)" : "");
  (void)a;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  api *a = cls;
  req *q = *con_cls;
  if (!q) { /* headers in */
    q = calloc(1, sizeof *q);
    if (!q) return MHD_NO;
    *con_cls = q;
    q->t0 = metrics_now_ns();
    if (api_route_parse_path(method, url, &q->r) == 0)
      MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_query, &q->r);
    if (!q->r.status) {
      if (q->r.id == AR_SUBMIT)
        q->limit = a->c->max_item_size > 0 ? (size_t)a->c->max_item_size : 0;
      else if (q->r.id == AR_DRYRUN || q->r.id == AR_GRAPHQL)
        q->limit = API_JSON_BODY_MAX;
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (q->limit && cl) {
      char *end;
      errno = 0;
      unsigned long long n = strtoull(cl, &end, 10);
      if (errno == ERANGE || n > q->limit) { /* refuse before the body is sent */
        q->too_large = 1;
        api_resp o = {0};
        too_large(a, q, &o);
        return send_resp(c, q, &o);
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size) { /* a body chunk */
    if (q->limit && append(q, upload_data, *upload_data_size) < 0) return MHD_NO;
    *upload_data_size = 0;
    return MHD_YES;
  }
  api_resp o = {0};
  if (q->r.status) {
    api_resp_error(&o, q->r.status, q->r.error, "%s", route_message(&q->r));
  } else if (q->too_large) {
    too_large(a, q, &o);
  } else if (q->r.id == AR_OPTIONS) {
    o.status = 204;
  } else {
    api_handle(a, &q->r, q->body, q->len, &o);
    if (!o.status) api_resp_error(&o, 500, "internal_error", "handler gave no answer");
  }
  return send_resp(c, q, &o);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  req *q = *con_cls;
  if (!q) return;
  free(q->body);
  free(q);
  *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512], q[600];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  log_warn("api.http", "msg=%s", log_quote(msg, q, sizeof q));
}

api *api_start(node *n, const config *c, vn_err *err) {
  api *a = calloc(1, sizeof *a);
  if (!a) {
    vn_errf(err, "oom", "out of memory");
    return NULL;
  }
  a->n = n;
  a->c = c;
  const char *host = c->listen_host && c->listen_host[0] ? c->listen_host : "127.0.0.1";
  char port[16];
  snprintf(port, sizeof port, "%d", c->listen_port);
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int grc = getaddrinfo(host, port, &hints, &res);
  if (grc != 0 || !res) {
    vn_errf(err, "api_bad_address", "cannot listen on %s:%s: %s (check the port field)", host, port,
            gai_strerror(grc));
    free(a);
    return NULL;
  }
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ERROR_LOG;
  if (res->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  errno = 0;
  a->d = MHD_start_daemon(flags, (uint16_t)c->listen_port, NULL, NULL, on_request, a,
                          MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a, /* first, or MHD warns */
                          MHD_OPTION_SOCK_ADDR, res->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                          (unsigned)API_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned)API_CONNECTION_TIMEOUT_S,
                          /* MHD_OPTION_LISTENING_ADDRESS_REUSE is left out on purpose:
                           * unset, MHD sets SO_REUSEADDR (a restart binds at once despite
                           * TIME_WAIT); 0 would mean "exclusive" (no SO_REUSEADDR) and 1
                           * adds SO_REUSEPORT, letting a second node share the port. */
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
  int e = errno;
  freeaddrinfo(res);
  if (!a->d) {
    vn_errf(err, "api_listen_failed", "cannot listen on %s:%s%s%s", host, port, e ? ": " : "",
            e ? strerror(e) : "");
    free(a);
    return NULL;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
  a->port = di ? di->port : c->listen_port;
  return a;
}

void api_stop(api *a) {
  if (!a) return;
  atomic_store(&a->stopping, 1);
  MHD_stop_daemon(a->d);
  free(a);
}

int api_port(const api *a) {
  return a ? a->port : -1;
}
