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
  char buf[2 * sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t k = (size_t)n < sizeof err->msg ? (size_t)n : sizeof err->msg - 1;
  memcpy(buf + k, ": ", 2);
  memcpy(buf + k + 2, err->msg, sizeof err->msg);
  buf[sizeof buf - 1] = 0;
  memcpy(err->msg, buf, sizeof err->msg - 1);
  err->msg[sizeof err->msg - 1] = 0;
}

void vn_err_clear(vn_err *err) {
  if (!err) return;
  err->code = NULL;
  err->http = 0;
  err->msg[0] = 0;
}
