/* log.h - the node's logger: one line per event, logfmt or JSON.
 *
 * One of vmnode's few globals (see STYLE.md): every module logs through it,
 * main() configures it once with log_init() from the config (logFormat,
 * logLevel). Before log_init() it writes logfmt at level info to stderr.
 *
 * A call names an event ("serve.listen", "proc.apply") and gives its fields as
 * logfmt text, printf-style:
 *
 *   log_info("serve.listen", "addr=%s port=%d", host, port);
 *   log_warn("deliver.retry", "target=%s err=%s", url, log_quote(msg, qb, sizeof qb));
 *   log_debug("store.open", NULL);   (no fields: NULL, not "")
 *
 * logfmt:  ts=2026-11-25T12:00:00.123Z level=info event=serve.listen addr=127.0.0.1 port=8080
 * JSON:    {"ts":"2026-11-25T12:00:00.123Z","level":"info","event":"serve.listen",
 *           "addr":"127.0.0.1","port":"8080"}
 *
 * Field text is key=value pairs separated by spaces; a value with spaces,
 * quotes or '=' is written "quoted" with \" and \\ escapes (log_quote does
 * that). In JSON every value is a string, a bare key is true. The keys ts,
 * level and event are the logger's own: do not use them as fields.
 * Newlines and other control characters never reach the output raw, so an
 * event is always exactly one line. Lines are written whole (one write per
 * line under a mutex): safe from any thread. */
#ifndef VN_LOG_H
#define VN_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

typedef enum vn_log_level {
  VN_LOG_DEBUG,
  VN_LOG_INFO,
  VN_LOG_WARN,
  VN_LOG_ERROR,
} vn_log_level;

/* Configure the logger: format "logfmt" or "json", level "debug", "info",
 * "warn" or "error", output FILE (not closed by the logger). NULL keeps the
 * default for that argument (logfmt, info, stderr). On a bad name returns -1
 * with "config_bad_value" and changes nothing. */
int log_init(const char *format, const char *level, FILE *out, vn_err *err);
/* "warn" -> VN_LOG_WARN; -1 when unknown. */
int log_level_parse(const char *name);
/* Whether an event at this level would be written (to skip costly fields). */
int log_enabled(vn_log_level level);

void vn_log(vn_log_level level, const char *event, const char *fmt_kv, ...)
    __attribute__((format(printf, 3, 4)));
void log_debug(const char *event, const char *fmt_kv, ...) __attribute__((format(printf, 2, 3)));
void log_info(const char *event, const char *fmt_kv, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *event, const char *fmt_kv, ...) __attribute__((format(printf, 2, 3)));
void log_error(const char *event, const char *fmt_kv, ...) __attribute__((format(printf, 2, 3)));

/* s as a logfmt value: s itself when it needs no quotes, else a "quoted"
 * copy written to buf (cut short to fit n, still well formed; n >= 8).
 * NULL gives the text null, "" gives "". The result points to s, buf or a
 * string constant. */
const char *log_quote(const char *s, char *buf, size_t n);

#endif
