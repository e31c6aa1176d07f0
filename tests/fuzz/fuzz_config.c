/* fuzz_config.c - libFuzzer target for the config.yaml loader.
 *
 * Loads arbitrary bytes over the defaults, then checks what must hold after
 * any load: a failed load leaves the config as it was, a good load gives a
 * config that validates its own invariants and dumps to YAML that loads back
 * to the same config (prvKey aside: the dump redacts it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static char *dump(const config *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) abort();
  config_dump(c, f);
  fclose(f);
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  config c;
  config_defaults(&c);
  char *before = dump(&c);
  vn_err err;
  vn_err_clear(&err);
  int rc = config_load_string(&c, (const char *)data, size, "fuzz.yaml", &err);
  if (rc != 0) {
    /* Failure: an error code and message, and c untouched. */
    if (!err.code || !err.msg[0]) abort();
    char *after = dump(&c);
    if (strcmp(before, after)) abort();
    free(after);
  } else {
    if (!c.port || !c.listen_host || c.listen_port < 1 || c.listen_port > 65535) abort();
    if (c.max_item_size < 1024 || c.max_item_size > (1 << 30)) abort();
    if (c.result_wait_ms < 0 || c.result_wait_ms > 600000) abort();
    if (!config_base_url(&c)) abort();
    config_validate(&c, &err);
    /* Round trip through config_dump (without the redacted key). */
    free(c.prv_key);
    c.prv_key = NULL;
    char *out = dump(&c);
    config d;
    config_defaults(&d);
    if (config_load_string(&d, out, strlen(out), "dump", &err)) {
      fprintf(stderr, "dump does not load back: %s\n%s\n", err.msg, out);
      abort();
    }
    char *out2 = dump(&d);
    if (strcmp(out, out2)) {
      fprintf(stderr, "dump changed on reload:\n%s\n---\n%s\n", out, out2);
      abort();
    }
    free(out);
    free(out2);
    config_free(&d);
  }
  free(before);
  config_free(&c);
  return 0;
}
