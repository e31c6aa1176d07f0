/* httpc.h - a small blocking HTTP client (libcurl) for the CLI talking to a
 * node and for node-to-node delivery.
 *
 * One call = one request and its whole answer in memory. Redirects are not
 * followed: a 3xx comes back as is, with its Location (hymx answers 308 with
 * the node that hosts a process; the caller decides whether to go there).
 * Any HTTP status is a success of the call: check out->status. Errors are
 * only for requests that got no complete answer:
 *   node_unreachable   cannot connect (refused, no such host, connect timeout)
 *                      or the connection closed before an answer
 *   node_timeout       connected, but no whole answer within timeout_ms
 *   response_too_large the body is larger than the cap (64 MiB by default)
 *   bad_url            not an http:// or https:// URL
 *   http_failed        anything else libcurl reports (TLS, ...)
 * Safe to call from several threads at once. */
#ifndef VN_HTTPC_H
#define VN_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define HTTPC_MAX_RESPONSE ((size_t)64 << 20)

typedef struct httpc_resp {
  long status; /* HTTP status, e.g. 200, 308, 404 */
  char *body;  /* malloc'd, NUL-terminated for convenience (len excludes the NUL) */
  size_t len;
  char *location;     /* Location header made absolute, or NULL */
  char *content_type; /* Content-Type header, or NULL */
} httpc_resp;

typedef struct httpc_req {
  const char *method; /* "GET" when NULL; "HEAD" sends no body back */
  const char *url;
  const char *content_type; /* of the request body, or NULL */
  const uint8_t *body;      /* request body (len bytes) or NULL */
  size_t len;
  const char *const *headers; /* extra "Name: value" strings, NULL-terminated, or NULL */
  int timeout_ms;             /* the whole exchange; <= 0: no limit (connecting: 10 s at most) */
  size_t max_size;            /* cap on the response body; 0: HTTPC_MAX_RESPONSE */
} httpc_req;

/* Send one request. On success (any status) returns 0 and fills *out, which
 * the caller frees with httpc_resp_free. On failure returns -1, fills err and
 * leaves *out zeroed. */
int httpc_request(const char *method, const char *url, const char *content_type,
                  const uint8_t *body, size_t len, httpc_resp *out, int timeout_ms, vn_err *err);
/* The same with every option. */
int httpc_do(const httpc_req *req, httpc_resp *out, vn_err *err);
/* Free what a response owns and zero it; NULL and zeroed responses are fine. */
void httpc_resp_free(httpc_resp *r);

#endif
