/* fuzz_api_route.c - libFuzzer target for the HTTP API's request parser
 * (src/api/route.c): method + path + query, cursors, ids, nonces.
 *
 * Input layout: the first byte picks the method, the rest (up to the first
 * NUL) is the URL with an optional "?query". Checks invariants on every
 * parse: a valid route has an id and no error; an error has a status and a
 * code; parameters that are set are well formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/route.h"
#include "common/metrics.h"

static const char *const METHODS[] = {"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "", "get"};

static void check(const api_route *r, int rc) {
  if (rc == 0) {
    if (r->status || r->id == AR_NONE) abort();
  } else {
    if (!r->status || !r->error) abort();
  }
  if (r->metric < 0 || r->metric >= MR_COUNT) abort();
  if (r->pid[0] && !api_is_id(r->pid)) abort();
  if (r->msgid[0] && !api_is_id(r->msgid)) abort();
  if (r->acc[0] && !api_is_address(r->acc)) abort();
  if (strlen(r->key) > API_MAX_KEY) abort();
  if (r->nonce < -1 || r->nonce > API_MAX_NONCE) abort();
  if (r->limit < 1 || r->limit > API_MAX_LIMIT) abort();
  if (r->after < -1 || r->after > API_MAX_NONCE) abort();
  if (r->before != INT64_MAX && (r->before < 0 || r->before > API_MAX_NONCE)) abort();
  if (rc == 0 && r->id == AR_CACHE && (!r->pid[0] || !r->key[0])) abort();
  if (rc == 0 && r->id == AR_MESSAGE_BY_NONCE && r->nonce < 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *method = METHODS[data[0] & 7];
  char *url = malloc(size);
  if (!url) return 0;
  memcpy(url, data + 1, size - 1);
  url[size - 1] = 0; /* stops at the first NUL inside, like a C string from the server */
  api_route r;
  int rc = api_route_parse_path(method, url, &r);
  check(&r, rc);
  rc = api_route_parse(method, url, &r);
  check(&r, rc);

  /* The same bytes as one query value for the parameters with grammar. */
  if (rc == 0) {
    static const char *const NAMES[] = {"from", "to", "limit", "sort", "timeout-ms", "process-id"};
    api_route q;
    api_route_parse("GET", "/results/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &q);
    rc = api_route_query(&q, NAMES[data[0] % 6], url);
    check(&q, q.status ? -1 : 0);
    int64_t n;
    if (api_parse_cursor(url, &n) == 0 && (n < 0 || n > API_MAX_NONCE)) abort();
  }
  free(url);
  return 0;
}
