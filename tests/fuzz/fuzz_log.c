/* fuzz_log.c - libFuzzer target for the logger's logfmt -> JSON conversion.
 *
 * Any field text must give exactly one line, and in JSON mode a line that
 * parses as a JSON object with ts, level and event first. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void check(const char *buf, size_t len, int json) {
  if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\n', len) != buf + len - 1) abort();
  if (!json) return;
  json_error_t je;
  json_t *j = json_loadb(buf, len, 0, &je);
  if (!j || !json_is_object(j) || !json_object_get(j, "ts") || strncmp(buf, "{\"ts\":\"", 7)) {
    fprintf(stderr, "bad JSON line (%s): %.*s", j ? "shape" : je.text, (int)len, buf);
    abort();
  }
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = 0; /* the logger sees C strings: stop at the first NUL */
  for (int json = 0; json < 2; json++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || log_init(json ? "json" : "logfmt", "debug", f, NULL)) abort();
    log_info(size > 0 && data[0] & 1 ? text : "fuzz.event", "%s", text);
    log_init(NULL, NULL, NULL, NULL);
    fclose(f);
    check(buf, len, json);
    free(buf);
  }
  char q[64];
  const char *s = log_quote(text, q, sizeof q);
  if (s != text && strlen(s) >= sizeof q) abort();
  free(text);
  return 0;
}
