/* testutil.h - shared helpers for the cmocka unit tests. */
#ifndef VN_TESTUTIL_H
#define VN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Directory of the shared test vectors: $VN_SHARED or ../shared next to the repo. */
static inline const char *tu_shared_dir(void) {
  const char *s = getenv("VN_SHARED");
  return s ? s : "../shared";
}

/* Read a whole file (malloc'd) or fail the test. */
static inline uint8_t *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail_msg("cannot open %s", path);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  if (fread(b, 1, (size_t)n, f) != (size_t)n) fail_msg("short read %s", path);
  b[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return b;
}

#endif
