/* fuzz_item.c - libFuzzer target for the ANS-104 decoder.
 *
 * Every input is tried two ways, so the seed corpus can be plain .bin items:
 *   - as a binary item: if item_decode accepts it, item_encode must give back
 *     the same bytes, item_to_json -> text -> item_from_json must give back
 *     the same item, and item_verify / item_owner_address / item_tags_unique
 *     must not crash;
 *   - as Avro tag bytes for item_avro_decode_tags: accepted tags must
 *     re-encode (canonically, never longer) and decode to the same tags;
 *   - as JSON text for item_from_json: an accepted item must encode, and the
 *     binary must decode back to the same bytes and id.
 * Any violated invariant aborts, which libFuzzer reports as a crash.
 * Seeds: tests/fuzz/corpus/item/ (small public vectors from shared/). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/item.h"

#define CHECK(c)                                                                \
  do {                                                                          \
    if (!(c)) {                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                  \
    }                                                                           \
  } while (0)

static int same_tags(const item_tag *a, size_t na, const item_tag *b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++)
    if (a[i].name_len != b[i].name_len || a[i].value_len != b[i].value_len ||
        memcmp(a[i].name, b[i].name, a[i].name_len) != 0 ||
        memcmp(a[i].value, b[i].value, a[i].value_len) != 0 || a[i].name[a[i].name_len] != 0 ||
        a[i].value[a[i].value_len] != 0)
      return 0;
  return 1;
}

static void fuzz_item(const uint8_t *buf, size_t len) {
  vn_err err = {0};
  item *it = item_decode(buf, len, &err);
  if (!it) {
    CHECK(err.code != NULL);
    return;
  }
  size_t el = 0;
  uint8_t *enc = item_encode(it, &el, &err);
  CHECK(enc != NULL);
  CHECK(el == len && memcmp(enc, buf, len) == 0);

  json_t *j = item_to_json(it);
  CHECK(j != NULL);
  char *text = json_dumps(j, JSON_COMPACT);
  CHECK(text != NULL);
  json_decref(j);
  json_error_t je;
  json_t *j2 = json_loads(text, JSON_ALLOW_NUL, &je);
  CHECK(j2 != NULL);
  free(text);
  item *back = item_from_json(j2, &err);
  if (!back) fprintf(stderr, "item_from_json: %s %s\n", err.code, err.msg);
  CHECK(back != NULL);
  json_decref(j2);
  size_t bl = 0;
  uint8_t *benc = item_encode(back, &bl, &err);
  CHECK(benc != NULL && bl == len && memcmp(benc, buf, len) == 0);
  CHECK(strcmp(back->id, it->id) == 0);
  CHECK(same_tags(back->tags, back->ntags, it->tags, it->ntags));
  free(benc);
  item_free(back);

  (void)item_verify(it, &err);
  char addr[ITEM_ADDR_MAX];
  (void)item_owner_address(it, addr);
  (void)item_tags_unique(it, &err);
  uint8_t h[48];
  CHECK(item_deep_hash(it, h, &err) == 0);
  free(enc);
  item_free(it);
}

static void fuzz_tags(const uint8_t *buf, size_t len) {
  vn_err err = {0};
  item_tag *t = NULL;
  size_t n = 0;
  if (item_avro_decode_tags(buf, len, &t, &n, &err) < 0) {
    CHECK(err.code != NULL && t == NULL && n == 0);
    return;
  }
  size_t el = 0;
  uint8_t *e = item_avro_encode_tags(t, n, &el);
  CHECK(e != NULL);
  CHECK(el <= len); /* canonical form is never longer */
  item_tag *t2 = NULL;
  size_t n2 = 0;
  CHECK(item_avro_decode_tags(e, el, &t2, &n2, &err) == 0);
  CHECK(same_tags(t, n, t2, n2));
  item_tags_free(t, n);
  item_tags_free(t2, n2);
  free(e);
}

static void fuzz_json(const uint8_t *buf, size_t len) {
  json_error_t je;
  json_t *j = json_loadb((const char *)buf, len, JSON_ALLOW_NUL, &je);
  if (!j) return;
  vn_err err = {0};
  item *it = item_from_json(j, &err);
  json_decref(j);
  if (!it) {
    CHECK(err.code != NULL);
    return;
  }
  size_t el = 0;
  uint8_t *enc = item_encode(it, &el, &err);
  CHECK(enc != NULL);
  item *d = item_decode(enc, el, &err);
  if (!d) fprintf(stderr, "item_decode of a JSON item: %s %s\n", err.code, err.msg);
  CHECK(d != NULL);
  size_t dl = 0;
  uint8_t *denc = item_encode(d, &dl, &err);
  CHECK(denc != NULL && dl == el && memcmp(denc, enc, el) == 0);
  CHECK(strcmp(d->id, it->id) == 0);
  (void)item_verify(it, &err);
  free(denc);
  free(enc);
  item_free(d);
  item_free(it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_item(data, size);
  fuzz_tags(data, size);
  fuzz_json(data, size);
  return 0;
}
