/* api.h - the node's HTTP API (hymx routes and the AO MU/CU/SU routes that
 * aoconnect and aos call; docs/api.md lists every route).
 *
 * The API parses and validates requests and calls the node; it keeps no
 * state of its own. It runs libmicrohttpd with one thread per connection, so
 * handlers may block: POST / waits until the item is durable, GET /result
 * long-polls for a result.
 *
 * Lifecycle: api_start() after node_open(), api_stop() before node_close().
 * api_stop() waits for the requests in flight (long polls end early with
 * 503 shutting_down). */
#ifndef VN_API_H
#define VN_API_H

#include "common/err.h"
#include "config/config.h"
#include "node/node.h"

typedef struct api api;

/* Listen on c->listen_host:c->listen_port (port 0 = any free port; see
 * api_port). `n` and `c` are borrowed and must outlive the api. Errors:
 * "api_bad_address" (the host does not resolve), "api_listen_failed". */
api *api_start(node *n, const config *c, vn_err *err);
/* Stop listening, finish the requests in flight, free. NULL is a no-op. */
void api_stop(api *a);
/* The port actually bound (useful when the config asked for port 0). */
int api_port(const api *a);

#endif
