/* internal.h - shared by the files of src/api (not a public header).
 *
 * api.c owns the HTTP server and the request lifecycle; handlers.c turns a
 * parsed route (route.h) into an api_resp by calling the node and the store.
 * Handlers never see libmicrohttpd, which keeps them short and lets api.c
 * add the headers every answer needs (CORS, Content-Type) in one place. */
#ifndef VN_API_INTERNAL_H
#define VN_API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/route.h"

struct api {
  node *n;
  const config *c;
  struct MHD_Daemon *d;
  int port;
  atomic_int stopping; /* set by api_stop: long polls give up */
};

typedef struct api_resp {
  int status;
  char *body; /* malloc'd, may be NULL (empty body) */
  size_t len;
  const char *ctype; /* static; NULL means application/json */
  char *location;    /* malloc'd Location header (redirects) or NULL */
} api_resp;

/* Run the handler for a valid route. `body` is the request body (POST). */
void api_handle(api *a, const api_route *r, const uint8_t *body, size_t len, api_resp *out);

/* Builders; each replaces what *o held before. */
void api_resp_json(api_resp *o, int status, json_t *j); /* steals j */
void api_resp_text(api_resp *o, int status, const char *ctype, char *body,
                   size_t len); /* steals body */
void api_resp_error(api_resp *o, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* From a vn_err: status = e->http when set, else dflt. */
void api_resp_vn_err(api_resp *o, const vn_err *e, int dflt);
void api_resp_clear(api_resp *o);

#endif
