/* item.c - the binary ANS-104 form (decode / encode), verification dispatch,
 * owner addresses and the item builder.
 *
 * Decoding is strict (see docs/items.md for why): every byte of the input is
 * accounted for, presence bytes are 0 or 1, the u64 tag count must equal the
 * number of tags in the Avro bytes (a zero count with tag bytes is a
 * mismatch), and every length read from the wire is checked against what is
 * left before it is used, so a hostile u64 cannot overflow an offset. The raw
 * Avro tag bytes are kept so that item_encode gives back the input exactly. */
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "item/internal.h"

/* ---- decode ---- */

typedef struct {
  const uint8_t *b;
  size_t len, pos;
} cur;

static int need(cur *c, size_t n, const char *what, vn_err *err) {
  if (n > c->len - c->pos)
    return vn_errf(err, "item_truncated", "item ends inside the %s (offset %zu, need %zu more)",
                   what, c->pos, n);
  return 0;
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  uint8_t *d = malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

static int read_opt32(cur *c, const char *what, int *has, uint8_t out[32], vn_err *err) {
  if (need(c, 1, what, err) < 0) return -1;
  uint8_t f = c->b[c->pos++];
  if (f > 1)
    return vn_errf(err, "item_bad_presence_byte", "%s presence byte is %u; it must be 0 or 1", what,
                   f);
  *has = f;
  if (f) {
    if (need(c, 32, what, err) < 0) return -1;
    memcpy(out, c->b + c->pos, 32);
    c->pos += 32;
  }
  return 0;
}

item *item_decode(const uint8_t *buf, size_t len, vn_err *err) {
  cur c = {buf, len, 0};
  item *it = item_new();
  if (!it) {
    vn_errf(err, "oom", "out of memory decoding an item");
    return NULL;
  }
  if (need(&c, 2, "signature type", err) < 0) goto fail;
  it->sig_type = (uint16_t)get_le(buf, 2);
  c.pos = 2;
  size_t sl, ol;
  if (!item__sig_sizes(it->sig_type, &sl, &ol)) {
    vn_errf(err, "item_bad_signature_type", "unknown signature type %u", it->sig_type);
    goto fail;
  }
  if (need(&c, sl, "signature", err) < 0) goto fail;
  if (!(it->sig = dup_bytes(buf + c.pos, sl))) goto oom;
  it->sig_len = sl;
  c.pos += sl;
  if (need(&c, ol, "owner", err) < 0) goto fail;
  if (!(it->owner = dup_bytes(buf + c.pos, ol))) goto oom;
  it->owner_len = ol;
  c.pos += ol;
  if (read_opt32(&c, "target", &it->has_target, it->target, err) < 0) goto fail;
  if (read_opt32(&c, "anchor", &it->has_anchor, it->anchor, err) < 0) goto fail;
  if (need(&c, 16, "tag header", err) < 0) goto fail;
  uint64_t ntags = get_le(buf + c.pos, 8);
  uint64_t tbl = get_le(buf + c.pos + 8, 8);
  c.pos += 16;
  if (tbl > c.len - c.pos) {
    vn_errf(err, "item_truncated", "tag bytes length %llu exceeds the %zu bytes left",
            (unsigned long long)tbl, c.len - c.pos);
    goto fail;
  }
  if (tbl > ITEM_MAX_TAG_BYTES) {
    vn_errf(err, "item_tags_too_large", "%llu tag bytes; the limit is %d", (unsigned long long)tbl,
            ITEM_MAX_TAG_BYTES);
    goto fail;
  }
  if (ntags > ITEM_MAX_TAGS) {
    vn_errf(err, "item_too_many_tags", "item declares %llu tags; the limit is %d",
            (unsigned long long)ntags, ITEM_MAX_TAGS);
    goto fail;
  }
  if (ntags == 0 && tbl != 0) {
    /* goar would read these bytes as data, arbundles would skip them: refuse
     * the item rather than pick one reading. */
    vn_errf(err, "item_tag_count_mismatch", "tag count is 0 but %llu tag bytes follow",
            (unsigned long long)tbl);
    goto fail;
  }
  if (tbl) {
    if (item_avro_decode_tags(buf + c.pos, (size_t)tbl, &it->tags, &it->ntags, err) < 0) goto fail;
    if (!(it->tag_bytes = dup_bytes(buf + c.pos, (size_t)tbl))) goto oom;
    it->tag_bytes_len = (size_t)tbl;
    c.pos += (size_t)tbl;
  }
  if (it->ntags != ntags) {
    vn_errf(err, "item_tag_count_mismatch", "tag count is %llu but the tag bytes hold %zu tags",
            (unsigned long long)ntags, it->ntags);
    goto fail;
  }
  it->data_len = c.len - c.pos;
  if (it->data_len && !(it->data = dup_bytes(buf + c.pos, it->data_len))) goto oom;
  item__id_of(it->sig, it->sig_len, it->id);
  return it;
oom:
  vn_errf(err, "oom", "out of memory decoding an item");
fail:
  item_free(it);
  return NULL;
}

/* ---- encode ---- */

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Shape checks shared by encode and verify: the sizes must be the ones the
 * signature type prescribes, and tags must have their raw bytes. */
static int check_signed(const item *it, vn_err *err) {
  size_t sl, ol;
  if (!item__sig_sizes(it->sig_type, &sl, &ol))
    return vn_errf(err, "item_bad_signature_type", "unknown signature type %u", it->sig_type);
  if (!it->sig || it->sig_len != sl || !it->owner || it->owner_len != ol)
    return vn_errf(err, "item_not_signed",
                   "item is not signed (or its signature or owner has the "
                   "wrong size for type %u)",
                   it->sig_type);
  if (it->ntags && (!it->tag_bytes || !it->tag_bytes_len))
    return vn_errf(err, "item_not_signed", "item tags changed after signing; sign it again");
  return 0;
}

uint8_t *item_encode(const item *it, size_t *len, vn_err *err) {
  if (check_signed(it, err) < 0) return NULL;
  size_t fixed = 2 + it->sig_len + it->owner_len + 1 + 1 + 16 + (it->has_target ? 32 : 0) +
                 (it->has_anchor ? 32 : 0);
  if (it->tag_bytes_len > SIZE_MAX - fixed || it->data_len > SIZE_MAX - fixed - it->tag_bytes_len) {
    vn_errf(err, "item_too_large", "item too large to encode");
    return NULL;
  }
  size_t total = fixed + it->tag_bytes_len + it->data_len;
  uint8_t *out = malloc(total ? total : 1);
  if (!out) {
    vn_errf(err, "oom", "out of memory encoding an item");
    return NULL;
  }
  size_t o = 0;
  put_le(out, it->sig_type, 2);
  o += 2;
  memcpy(out + o, it->sig, it->sig_len);
  o += it->sig_len;
  memcpy(out + o, it->owner, it->owner_len);
  o += it->owner_len;
  out[o++] = it->has_target ? 1 : 0;
  if (it->has_target) memcpy(out + o, it->target, 32), o += 32;
  out[o++] = it->has_anchor ? 1 : 0;
  if (it->has_anchor) memcpy(out + o, it->anchor, 32), o += 32;
  put_le(out + o, it->ntags, 8);
  put_le(out + o + 8, it->tag_bytes_len, 8);
  o += 16;
  if (it->tag_bytes_len) memcpy(out + o, it->tag_bytes, it->tag_bytes_len);
  o += it->tag_bytes_len;
  if (it->data_len) memcpy(out + o, it->data, it->data_len);
  o += it->data_len;
  *len = o;
  return out;
}

/* ---- verify ---- */

int item_verify(const item *it, vn_err *err) {
  if (check_signed(it, err) < 0) return -1;
  if (it->sig_type != ITEM_SIG_ARWEAVE && it->sig_type != ITEM_SIG_ETHEREUM &&
      it->sig_type != ITEM_SIG_ED25519 && it->sig_type != ITEM_SIG_SOLANA)
    return vn_errf(err, "item_bad_signature_type", "cannot verify signature type %u", it->sig_type);
  /* The id is derived from the signature; a stale one would make two
   * different items share an id in the store. */
  if (it->id[0]) {
    char id[ITEM_ID_LEN + 1];
    item__id_of(it->sig, it->sig_len, id);
    if (strcmp(id, it->id) != 0)
      return vn_errf(err, "invalid_signature", "item id %s does not match its signature", it->id);
  }
  uint8_t msg[48];
  if (item_deep_hash(it, msg, err) < 0) return -1;
  int rc = -1;
  switch (it->sig_type) {
    case ITEM_SIG_ETHEREUM:
      rc = item_secp256k1_verify(it->sig, it->owner, msg);
      break;
    case ITEM_SIG_ARWEAVE:
      rc = item__rsa_verify(it->owner, it->owner_len, it->sig, it->sig_len, msg);
      break;
    default:
      rc = item__ed25519_verify(it->owner, it->sig, msg, 48);
      break;
  }
  if (rc < 0)
    return vn_errf(err, "invalid_signature", "signature of item %s does not verify (type %u)",
                   it->id[0] ? it->id : "(no id)", it->sig_type);
  return 0;
}

int item_owner_address(const item *it, char out[ITEM_ADDR_MAX]) {
  out[0] = 0;
  if (!it->owner || !it->owner_len) return -1;
  if (it->sig_type == ITEM_SIG_ETHEREUM) {
    if (it->owner_len != 65) return -1;
    return item_eth_address(it->owner, out);
  }
  uint8_t h[32];
  item_sha256(it->owner, it->owner_len, h);
  return b64url_encode(h, 32, out, ITEM_ADDR_MAX) < 0 ? -1 : 0;
}

/* ---- builder ---- */

item *item_new(void) {
  return calloc(1, sizeof(item));
}

void item_free(item *it) {
  if (!it) return;
  free(it->sig);
  free(it->owner);
  item_tags_free(it->tags, it->ntags);
  free(it->tag_bytes);
  free(it->data);
  free(it);
}

int item_set_target_b64(item *it, const char *b64url, vn_err *err) {
  uint8_t t[32];
  size_t n = strlen(b64url);
  if (n != ITEM_ID_LEN || b64url_decode(b64url, n, t, sizeof t) != 32)
    return vn_errf(err, "bad_target", "target must be 43 base64url characters (32 bytes)");
  item_set_target(it, t);
  return 0;
}

void item_set_target(item *it, const uint8_t target[32]) {
  memcpy(it->target, target, 32);
  it->has_target = 1;
}

void item_set_anchor(item *it, const uint8_t anchor[32]) {
  memcpy(it->anchor, anchor, 32);
  it->has_anchor = 1;
}

int item_add_tag(item *it, const char *name, const char *value, vn_err *err) {
  size_t nl = strlen(name), vl = strlen(value);
  if (it->ntags >= ITEM_MAX_TAGS)
    return vn_errf(err, "item_too_many_tags", "an item holds at most %d tags", ITEM_MAX_TAGS);
  if (item__check_tag(name, nl, value, vl, 1, err) < 0) return -1;
  item_tag *nt = realloc(it->tags, (it->ntags + 1) * sizeof *nt);
  if (!nt) return vn_errf(err, "oom", "out of memory adding a tag");
  it->tags = nt;
  item_tag *t = &nt[it->ntags];
  t->name = (char *)dup_bytes((const uint8_t *)name, nl + 1);
  t->value = (char *)dup_bytes((const uint8_t *)value, vl + 1);
  if (!t->name || !t->value) {
    free(t->name);
    free(t->value);
    return vn_errf(err, "oom", "out of memory adding a tag");
  }
  t->name_len = nl;
  t->value_len = vl;
  /* The whole Avro array must stay within ITEM_MAX_TAG_BYTES, or the signed
   * item would be refused by arbundles and by item_decode. */
  size_t total = item__avro_tags_size(nt, it->ntags + 1);
  if (total > ITEM_MAX_TAG_BYTES) {
    free(t->name);
    free(t->value);
    return vn_errf(err, "item_tags_too_large",
                   "tags would take %zu bytes; the limit is %d for all tags together", total,
                   ITEM_MAX_TAG_BYTES);
  }
  it->ntags++;
  /* The raw bytes no longer describe the tags; item_sign re-encodes. */
  free(it->tag_bytes);
  it->tag_bytes = NULL;
  it->tag_bytes_len = 0;
  return 0;
}

int item_set_data(item *it, const uint8_t *data, size_t len) {
  uint8_t *d = NULL;
  if (len && !(d = dup_bytes(data, len))) return -1;
  free(it->data);
  it->data = d;
  it->data_len = len;
  return 0;
}
