/* err.c - see err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vfill(vn_err *err, int http, const char *code, const char *fmt, va_list ap) {
  if (!err) return;
  err->code = code;
  err->http = http;
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int vn_errf(vn_err *err, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfill(err, 400, code, fmt, ap);
  va_end(ap);
  return -1;
}

int vn_errh(vn_err *err, int http, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfill(err, http, code, fmt, ap);
  va_end(ap);
  return -1;
}

void vn_err_wrap(vn_err *err, const char *fmt, ...) {
  if (!err) return;
  char pre[256], old[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
}

void vn_err_clear(vn_err *err) {
  if (!err) return;
  err->code = NULL;
  err->http = 0;
  err->msg[0] = 0;
}
