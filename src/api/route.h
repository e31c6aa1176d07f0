/* route.h - internal to src/api: the request parser.
 *
 * Turns (method, path, query arguments) into an api_route: which handler,
 * the validated path parameters (ids are 43-char base64url, nonces are
 * decimal integers in [0, 2^53]) and the validated query parameters. It
 * touches neither the network nor the node, so it is unit-tested and fuzzed
 * on its own (tests/fuzz/fuzz_api_route.c).
 *
 * The server (api.c) calls api_route_parse_path() with the path that
 * libmicrohttpd already percent-decoded, then api_route_query() for each
 * decoded query argument. Tests and the fuzzer call api_route_parse() with
 * a URL whose "?query" part it splits and decodes itself. */
#ifndef VN_API_ROUTE_H
#define VN_API_ROUTE_H

#include <stdint.h>

#include "item/item.h"

#define API_MAX_KEY 1024                 /* cache keys */
#define API_MAX_NONCE 9007199254740992LL /* 2^53: what a JSON number holds exactly */
#define API_DEFAULT_LIMIT 25
#define API_MAX_LIMIT 1000

typedef enum api_rid {
  AR_NONE = 0,              /* not parsed, or a parse error (see status/error) */
  AR_OPTIONS,               /* OPTIONS on any path: CORS preflight */
  AR_SUBMIT,                /* POST / */
  AR_SU_INFO,               /* GET / */
  AR_INFO,                  /* GET /info */
  AR_TIMESTAMP,             /* GET /timestamp */
  AR_RESULT,                /* GET /result/:msgid and /result/:pid/:msgid */
  AR_RESULTS,               /* GET /results/:pid */
  AR_DRYRUN,                /* POST /dry-run?process-id= */
  AR_MESSAGE,               /* GET /message/:msgid */
  AR_MESSAGE_BY_NONCE,      /* GET /messageByNonce/:pid/:nonce */
  AR_ASSIGNMENT_BY_NONCE,   /* GET /assignmentByNonce/:pid/:nonce */
  AR_ASSIGNMENT_BY_MESSAGE, /* GET /assignmentByMessage/:msgid */
  AR_NONCE,                 /* GET /nonce/:pid */
  AR_NODES,                 /* GET /nodes */
  AR_NODE,                  /* GET /node/:accid */
  AR_NODES_BY_PROCESS,      /* GET /nodesByProcess/:pid */
  AR_PROCESSES,             /* GET /processes/:id (process id or node address) */
  AR_MODULES,               /* GET /modules */
  AR_MODULE,                /* GET /module/:mid */
  AR_CACHE,                 /* GET /cache/:pid/:key */
  AR_METRICS,               /* GET /metrics */
  AR_SU_MESSAGE,            /* GET /:msgid?process-id= */
  AR_VERIFY_LOG,            /* GET /verify-log/:pid */
  AR_GRAPHQL,               /* POST /graphql (graphql.c) */
  AR_STATE,                 /* GET /state/:pid (AO CU): the process's current image */
  AR_COUNT
} api_rid;

typedef struct api_route {
  api_rid id;
  int metric;        /* MR_* of common/metrics.h, set even on errors */
  int status;        /* 0 when the request is valid, else the HTTP status to answer */
  const char *error; /* static error code when status != 0 */
  int is_post;       /* the method was POST (else GET/HEAD/OPTIONS) */

  /* path parameters ("" when absent) */
  char pid[ITEM_ID_LEN + 1];   /* process id (path, or ?process-id=) */
  char msgid[ITEM_ID_LEN + 1]; /* message / module id */
  char acc[ITEM_ADDR_MAX];     /* node address (/node/:accid, /processes/:id) */
  char key[API_MAX_KEY + 1];   /* cache key */
  int64_t nonce;               /* -1 when absent */

  /* query parameters */
  int64_t timeout_ms; /* ?timeout-ms=, -1 when absent */
  int64_t after;      /* ?from= as an exclusive nonce bound, -1 when absent */
  int64_t before;     /* ?to=, INT64_MAX when absent */
  int asc;            /* ?sort=ASC (default) or DESC */
  int limit;          /* ?limit=, default API_DEFAULT_LIMIT, at most API_MAX_LIMIT */
} api_route;

/* Parse a request line. Returns 0 when the route is valid, -1 when it is not;
 * either way *out is fully set (out->status / out->error say what to answer:
 * 404 not_found, 405 method_not_allowed, 400 bad_id / bad_nonce / bad_key /
 * bad_limit / bad_sort / bad_cursor / bad_timeout). NULL arguments are
 * treated as "". */
int api_route_parse(const char *method, const char *url, api_route *out);

/* The same for the server: `path` is the decoded path without the query
 * (libmicrohttpd's url), so a '?' in it (sent as %3F) is part of the path. */
int api_route_parse_path(const char *method, const char *path, api_route *out);

/* Apply one (decoded) query argument. Unknown names are ignored. Returns 0,
 * or -1 after setting out->status/error (the first error sticks). */
int api_route_query(api_route *r, const char *name, const char *value);

/* Helpers shared with the handlers. */
int api_is_id(const char *s);      /* 43 chars of base64url */
int api_is_address(const char *s); /* an id, or "0x" + 40 hex digits */
/* Decimal in [0, API_MAX_NONCE], digits only: 0 and *v set, else -1. */
int api_parse_nonce(const char *s, int64_t *v);
/* A results cursor (standard or url base64 of {"ordinate":"<n>",...}) or a
 * plain nonce: 0 and *nonce set, else -1. Spaces are read as '+' (a '+'
 * in a query string that the client did not escape). */
int api_parse_cursor(const char *s, int64_t *nonce);

#endif
