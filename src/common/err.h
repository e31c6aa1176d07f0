/* err.h - errors as values.
 *
 * Every fallible function takes a `vn_err *` (may be NULL) and returns -1 or
 * NULL on failure after filling it. `code` is a short stable machine code
 * (the HTTP API sends it as {"error":"<code>"}); `msg` is a sentence a user
 * can act on. Only main() exits. */
#ifndef VN_ERR_H
#define VN_ERR_H

#include <stddef.h>

typedef struct vn_err {
  const char *code; /* static string, e.g. "invalid_signature"; NULL = no error */
  int http;         /* suggested HTTP status (400 when unset) */
  char msg[512];
} vn_err;

/* Fill err (if not NULL) with a code and a printf-style message. Returns -1
 * so callers can write `return vn_errf(err, ...)`. */
int vn_errf(vn_err *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with an HTTP status. */
int vn_errh(vn_err *err, int http, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefix the existing message with context ("loading key: ..."). */
void vn_err_wrap(vn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vn_err_clear(vn_err *err);

#endif
