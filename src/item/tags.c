/* tags.c - item tags: the Avro array encoding, validation, lookups.
 *
 * Wire form: an Avro array of records {name: bytes, value: bytes}. Blocks of
 * zigzag-varint count, then that many (len, name, len, value) pairs; a block
 * with a negative count -c carries c records preceded by the block's byte
 * size; a zero count ends the array. Signers (arbundles, goar) write a single
 * positive block, which is what item_avro_encode_tags produces; the decoder
 * accepts every form Avro allows, because the raw bytes are what is signed
 * and item_encode writes them back untouched.
 *
 * Limits: ITEM_MAX_TAGS tags, names <= ITEM_MAX_TAG_NAME bytes, and all tag
 * bytes <= ITEM_MAX_TAG_BYTES (4096, what arbundles enforces). The ANS-104
 * text also caps a value at ITEM_MAX_TAG_VALUE (3072) bytes, but the network
 * does not: a real hymx module (mod-e0aN…, a 3516-byte Dockerfile tag) is
 * signed and accepted by arbundles. So the 3072 cap applies to tags vmnode
 * builds and signs, not to items it receives. Names and values must also be
 * valid UTF-8: every consumer of a tag (the JSON BundleItem, the Lua process,
 * GraphQL) treats it as a string, and a tag that cannot be represented in
 * JSON could not round-trip (see docs/items.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "item/internal.h"

int item__utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0)
      need = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
      need = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
      need = 3, cp = c & 0x07, min = 0x10000;
    else
      return 0;
    if (n - i - 1 < need) return 0;
    for (size_t k = 1; k <= need; k++) {
      uint8_t d = s[i + k];
      if ((d & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += need + 1;
  }
  return 1;
}

int item__check_tag(const char *name, size_t name_len, const char *value, size_t value_len,
                    int building, vn_err *err) {
  if (name_len > ITEM_MAX_TAG_NAME)
    return vn_errf(err, "item_tag_too_long", "tag name is %zu bytes; the limit is %d", name_len,
                   ITEM_MAX_TAG_NAME);
  if (building && value_len > ITEM_MAX_TAG_VALUE)
    return vn_errf(err, "item_tag_too_long", "tag value is %zu bytes; the limit is %d", value_len,
                   ITEM_MAX_TAG_VALUE);
  if (!item__utf8_valid((const uint8_t *)name, name_len) ||
      !item__utf8_valid((const uint8_t *)value, value_len))
    return vn_errf(err, "item_bad_tags", "tag names and values must be valid UTF-8");
  return 0;
}

void item_tags_free(item_tag *tags, size_t n) {
  if (!tags) return;
  for (size_t i = 0; i < n; i++) {
    free(tags[i].name);
    free(tags[i].value);
  }
  free(tags);
}

/* ---- encoding ---- */

static size_t varint_len(uint64_t z) {
  size_t n = 1;
  while (z >= 0x80) z >>= 7, n++;
  return n;
}

static size_t put_varint(uint8_t *p, uint64_t z) {
  size_t n = 0;
  while (z >= 0x80) {
    p[n++] = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  p[n++] = (uint8_t)z;
  return n;
}

/* zigzag of a non-negative length: 2 * v (v < 2^62 here, checked by caller). */
static uint64_t zz(size_t v) {
  return (uint64_t)v << 1;
}

size_t item__avro_tags_size(const item_tag *tags, size_t n) {
  if (n == 0) return 0;
  const size_t lim = (size_t)1 << 60;
  if (n > lim) return SIZE_MAX;
  size_t total = varint_len(zz(n)) + 1;
  for (size_t i = 0; i < n; i++) {
    size_t a = tags[i].name_len, b = tags[i].value_len;
    if (a > lim || b > lim) return SIZE_MAX;
    size_t rec = varint_len(zz(a)) + a + varint_len(zz(b)) + b;
    if (rec >= SIZE_MAX - total) return SIZE_MAX;
    total += rec;
  }
  return total;
}

uint8_t *item_avro_encode_tags(const item_tag *tags, size_t n, size_t *len) {
  *len = 0;
  if (n == 0) return malloc(1); /* no tags: no bytes at all, as signers write it */
  size_t total = item__avro_tags_size(tags, n);
  if (total == SIZE_MAX) return NULL;
  uint8_t *out = malloc(total);
  if (!out) return NULL;
  size_t o = put_varint(out, zz(n));
  for (size_t i = 0; i < n; i++) {
    o += put_varint(out + o, zz(tags[i].name_len));
    if (tags[i].name_len) memcpy(out + o, tags[i].name, tags[i].name_len);
    o += tags[i].name_len;
    o += put_varint(out + o, zz(tags[i].value_len));
    if (tags[i].value_len) memcpy(out + o, tags[i].value, tags[i].value_len);
    o += tags[i].value_len;
  }
  out[o++] = 0;
  *len = o;
  return out;
}

/* ---- decoding ---- */

typedef struct {
  const uint8_t *b;
  size_t len, pos;
} rd;

/* Avro long: zigzag over a little-endian base-128 varint, at most 10 bytes. */
static int read_long(rd *r, int64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (shift > 63 || r->pos >= r->len) return -1;
    uint8_t c = r->b[r->pos++];
    if (shift == 63 && (c & 0xfe)) return -1; /* bits beyond 64, or an 11th byte */
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) break;
  }
  *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
  return 0;
}

static char *read_bytes(rd *r, size_t limit, const char *what, size_t *n, vn_err *err) {
  int64_t l;
  if (read_long(r, &l) < 0 || l < 0) {
    vn_errf(err, "item_bad_tags", "bad Avro length of a tag %s", what);
    return NULL;
  }
  if ((uint64_t)l > limit) {
    vn_errf(err, "item_tag_too_long", "tag %s is %lld bytes; the limit is %zu", what, (long long)l,
            limit);
    return NULL;
  }
  if ((uint64_t)l > r->len - r->pos) {
    vn_errf(err, "item_bad_tags", "tag %s runs past the end of the tag bytes", what);
    return NULL;
  }
  char *s = malloc((size_t)l + 1);
  if (!s) {
    vn_errf(err, "oom", "out of memory decoding tags");
    return NULL;
  }
  memcpy(s, r->b + r->pos, (size_t)l);
  s[l] = 0;
  r->pos += (size_t)l;
  *n = (size_t)l;
  return s;
}

int item_avro_decode_tags(const uint8_t *buf, size_t len, item_tag **tags, size_t *n, vn_err *err) {
  *tags = NULL;
  *n = 0;
  if (len == 0) return 0; /* the "no tags" form: zero tag bytes */
  if (len > ITEM_MAX_TAG_BYTES)
    return vn_errf(err, "item_tags_too_large", "%zu tag bytes; the limit is %d", len,
                   ITEM_MAX_TAG_BYTES);
  rd r = {buf, len, 0};
  item_tag *out = NULL;
  size_t cnt = 0;
  for (;;) {
    int64_t bc;
    if (read_long(&r, &bc) < 0) {
      vn_errf(err, "item_bad_tags", "bad Avro block count in tags");
      goto fail;
    }
    if (bc == 0) break;
    size_t block_start = 0;
    int64_t block_size = -1;
    if (bc < 0) {
      if (bc == INT64_MIN) {
        vn_errf(err, "item_bad_tags", "bad Avro block count in tags");
        goto fail;
      }
      bc = -bc;
      if (read_long(&r, &block_size) < 0 || block_size < 0 ||
          (uint64_t)block_size > r.len - r.pos) {
        vn_errf(err, "item_bad_tags", "bad Avro block size in tags");
        goto fail;
      }
      block_start = r.pos;
    }
    if ((uint64_t)bc > (uint64_t)(ITEM_MAX_TAGS - cnt)) {
      vn_errf(err, "item_too_many_tags", "more than %d tags", ITEM_MAX_TAGS);
      goto fail;
    }
    if (!out && !(out = calloc(ITEM_MAX_TAGS, sizeof *out))) {
      vn_errf(err, "oom", "out of memory decoding tags");
      goto fail;
    }
    for (int64_t i = 0; i < bc; i++) {
      item_tag *t = &out[cnt];
      if (!(t->name = read_bytes(&r, ITEM_MAX_TAG_NAME, "name", &t->name_len, err))) goto fail;
      cnt++; /* from here on the slot is owned by out and freed on failure */
      if (!(t->value = read_bytes(&r, ITEM_MAX_TAG_BYTES, "value", &t->value_len, err))) goto fail;
      if (item__check_tag(t->name, t->name_len, t->value, t->value_len, 0, err) < 0) goto fail;
    }
    if (block_size >= 0 && r.pos - block_start != (uint64_t)block_size) {
      vn_errf(err, "item_bad_tags", "Avro block size %lld does not match its %zu bytes",
              (long long)block_size, r.pos - block_start);
      goto fail;
    }
  }
  if (r.pos != len) {
    vn_errf(err, "item_bad_tags", "%zu bytes after the end of the Avro tag array", len - r.pos);
    goto fail;
  }
  if (cnt == 0) {
    free(out);
    out = NULL;
  } else {
    item_tag *shrunk = realloc(out, cnt * sizeof *out);
    if (shrunk) out = shrunk;
  }
  *tags = out;
  *n = cnt;
  return 0;
fail:
  item_tags_free(out, cnt);
  return -1;
}

/* ---- lookups ---- */

const item_tag *item_tag_find(const item *it, const char *name) {
  size_t l = strlen(name);
  for (size_t i = 0; i < it->ntags; i++)
    if (it->tags[i].name_len == l && memcmp(it->tags[i].name, name, l) == 0) return &it->tags[i];
  return NULL;
}

const char *item_tag_get(const item *it, const char *name) {
  const item_tag *t = item_tag_find(it, name);
  return t ? t->value : NULL;
}

int item_tags_unique(const item *it, vn_err *err) {
  for (size_t i = 1; i < it->ntags; i++)
    for (size_t j = 0; j < i; j++)
      if (it->tags[i].name_len == it->tags[j].name_len &&
          memcmp(it->tags[i].name, it->tags[j].name, it->tags[i].name_len) == 0)
        return vn_errf(err, "duplicate_tag", "tag \"%s\" appears more than once", it->tags[i].name);
  return 0;
}
