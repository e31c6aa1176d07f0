/* test_item.c - ANS-104 items against the shared vectors (ans104/ and hymx/):
 * decoding, encoding, verification, re-signing, keys, JSON, tag limits and
 * the primitives (keccak, base64url). */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include "testutil.h"
#include "common/enc.h"
#include "item/internal.h"
#include "item/item.h"

/* ---- helpers ---- */

static char *vpath(const char *sub, const char *file) {
  static char buf[4][1024];
  static int k;
  char *b = buf[k++ % 4];
  snprintf(b, sizeof buf[0], "%s/vectors/%s/%s", tu_shared_dir(), sub, file);
  return b;
}

static json_t *load_json(const char *path) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) fail_msg("cannot parse %s: %s", path, je.text);
  return j;
}

static void hex_of(const uint8_t *p, size_t n, char *out) {
  hex_encode(p, n, out, 2 * n + 1);
}

static void b64_of(const uint8_t *p, size_t n, char *out, size_t cap) {
  assert_true(b64url_encode(p, n, out, cap) >= 0);
}

static item *decode_file(const char *sub, const char *file, vn_err *err) {
  size_t len = 0;
  uint8_t *b = tu_read_file(vpath(sub, file), &len);
  item *it = item_decode(b, len, err);
  free(b);
  return it;
}

/* A named key from ans104/keys.json (eth_key_1, eth_key_2, hymx_test_key,
 * arweave_jwk_1). */
static item_key *load_key(const char *name) {
  json_t *keys = load_json(vpath("ans104", "keys.json"));
  item_key *k = NULL;
  vn_err err = {0};
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(keys, "secp256k1"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
      k = item_key_from_hex(json_string_value(json_object_get(e, "private_key_hex")), &err);
  }
  json_array_foreach(json_object_get(keys, "arweave"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
      k = item_key_from_jwk(json_object_get(e, "jwk"), &err);
  }
  json_t *h = json_object_get(keys, "hymx_test_key");
  if (strcmp(name, "hymx_test_key") == 0)
    k = item_key_from_hex(json_string_value(json_object_get(h, "private_key_hex")), &err);
  json_decref(keys);
  if (!k) fail_msg("key %s: %s %s", name, err.code ? err.code : "not found", err.msg);
  return k;
}

static void assert_encode_equals(const item *it, const uint8_t *b, size_t len, const char *f) {
  vn_err err = {0};
  size_t el = 0;
  uint8_t *enc = item_encode(it, &el, &err);
  if (!enc) fail_msg("%s: encode failed: %s", f, err.msg);
  if (el != len || memcmp(enc, b, len) != 0) fail_msg("%s: re-encoding differs", f);
  free(enc);
}

/* item_to_json -> text -> item_from_json gives the same binary item. */
static void assert_json_roundtrip(const item *it, const char *f) {
  vn_err err = {0};
  json_t *j = item_to_json(it);
  if (!j) fail_msg("%s: item_to_json failed", f);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  json_error_t je;
  json_t *j2 = json_loads(s, JSON_ALLOW_NUL, &je);
  free(s);
  assert_non_null(j2);
  item *back = item_from_json(j2, &err);
  json_decref(j2);
  if (!back) fail_msg("%s: item_from_json failed: %s %s", f, err.code, err.msg);
  size_t l1, l2;
  uint8_t *a = item_encode(it, &l1, &err), *b = item_encode(back, &l2, &err);
  assert_non_null(a);
  assert_non_null(b);
  if (l1 != l2 || memcmp(a, b, l1) != 0) fail_msg("%s: JSON round trip changed the item", f);
  assert_string_equal(it->id, back->id);
  free(a);
  free(b);
  item_free(back);
}

/* ---- primitives ---- */

static void test_keccak_known(void **st) {
  (void)st;
  static const struct {
    const char *in, *hex;
  } kat[] = {
      {"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
      {"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
      {"The quick brown fox jumps over the lazy dog",
       "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"},
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    uint8_t h[32];
    char hx[65];
    item_keccak256((const uint8_t *)kat[i].in, strlen(kat[i].in), h);
    hex_of(h, 32, hx);
    assert_string_equal(hx, kat[i].hex);
  }
  /* The same sponge with the FIPS-202 padding must be OpenSSL's SHA3-256, for
   * every length around the 136-byte block boundary: that pins down the
   * permutation and the multi-block absorption, which the short known answers
   * above do not reach. */
  uint8_t buf[600];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
  for (size_t n = 0; n <= sizeof buf; n += (n < 300 ? 1 : 17)) {
    uint8_t a[32], b[32];
    unsigned int bl = 32;
    item__keccak(buf, n, 0x06, a);
    assert_int_equal(EVP_Digest(buf, n, b, &bl, EVP_sha3_256(), NULL), 1);
    if (memcmp(a, b, 32) != 0) fail_msg("keccak sponge differs from SHA3-256 at length %zu", n);
  }
}

static void test_b64url(void **st) {
  (void)st;
  char out[128];
  uint8_t dec[96];
  assert_int_equal(b64url_encode((const uint8_t *)"f", 1, out, sizeof out), 2);
  assert_string_equal(out, "Zg");
  b64url_encode((const uint8_t *)"foobar", 6, out, sizeof out);
  assert_string_equal(out, "Zm9vYmFy");
  const uint8_t odd[3] = {0xfb, 0xff, 0xbf};
  b64url_encode(odd, 3, out, sizeof out);
  assert_string_equal(out, "-_-_");
  for (size_t n = 0; n <= 64; n++) {
    uint8_t in[64];
    for (size_t i = 0; i < n; i++) in[i] = (uint8_t)(i * 37 + n);
    ssize_t el = b64url_encode(in, n, out, sizeof out);
    assert_int_equal(el, B64URL_LEN(n));
    assert_null(strchr(out, '='));
    assert_int_equal(b64url_decode(out, (size_t)el, dec, sizeof dec), n);
    assert_memory_equal(dec, in, n);
  }
  assert_int_equal(b64url_decode("Zg!!", 4, dec, sizeof dec), -1);
  assert_int_equal(b64url_decode("Zm9vY", 5, dec, sizeof dec), -1); /* 5 % 4 == 1 */
  assert_int_equal(b64url_decode("Zh", 2, dec, sizeof dec), -1);    /* non-zero spare bits */
}

static void test_key_address(void **st) {
  (void)st;
  vn_err err = {0};
  item_key *k =
      item_key_from_hex("0x64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1b", &err);
  assert_non_null(k);
  assert_string_equal(item_key_address(k), "0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51");
  assert_int_equal(item_key_sig_type(k), ITEM_SIG_ETHEREUM);
  char hx[67];
  assert_int_equal(item_key_to_hex(k, hx), 0);
  assert_string_equal(hx, "0x64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1b");
  item_key_free(k);
  /* Without the prefix, and in upper case. */
  k = item_key_from_hex("64DD2342616F385F3E8157CF7246CF394217E13E8F91B7D208E9F8B60E25ED1B", &err);
  assert_non_null(k);
  assert_string_equal(item_key_address(k), "0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51");
  item_key_free(k);
  /* Zero, the group order, short and non-hex keys are refused. */
  const char *bad[] = {"0x0000000000000000000000000000000000000000000000000000000000000000",
                       "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", "0x64dd",
                       "zz64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed"};
  for (size_t i = 0; i < 4; i++) {
    vn_err_clear(&err);
    assert_null(item_key_from_hex(bad[i], &err));
    assert_string_equal(err.code, "bad_key");
  }
  /* Every key in keys.json gives its recorded address. */
  json_t *keys = load_json(vpath("ans104", "keys.json"));
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(keys, "secp256k1"), i, e) {
    k = item_key_from_hex(json_string_value(json_object_get(e, "private_key_hex")), &err);
    assert_non_null(k);
    assert_string_equal(item_key_address(k), json_string_value(json_object_get(e, "address")));
    uint8_t pub[65];
    hex_decode(json_string_value(json_object_get(e, "public_key_hex")), pub, 65);
    char a[ITEM_ADDR_MAX];
    assert_int_equal(item_eth_address(pub, a), 0);
    assert_string_equal(a, json_string_value(json_object_get(e, "address")));
    item_key_free(k);
  }
  json_array_foreach(json_object_get(keys, "arweave"), i, e) {
    k = item_key_from_jwk(json_object_get(e, "jwk"), &err);
    if (!k) fail_msg("jwk: %s", err.msg);
    assert_int_equal(item_key_sig_type(k), ITEM_SIG_ARWEAVE);
    assert_string_equal(item_key_address(k), json_string_value(json_object_get(e, "address")));
    assert_int_equal(item_key_to_hex(k, hx), -1);
    item_key_free(k);
    /* A JWK whose private exponent does not belong to n is refused. */
    json_t *bad_jwk = json_deep_copy(json_object_get(e, "jwk"));
    json_object_set_new(bad_jwk, "d",
                        json_string(json_string_value(json_object_get(bad_jwk, "p"))));
    vn_err_clear(&err);
    assert_null(item_key_from_jwk(bad_jwk, &err));
    assert_string_equal(err.code, "bad_key");
    json_decref(bad_jwk);
  }
  json_decref(keys);
}

/* ---- ans104 vectors ---- */

static void check_valid(json_t *v) {
  const char *f = json_string_value(json_object_get(v, "file"));
  vn_err err = {0};
  size_t len = 0;
  uint8_t *b = tu_read_file(vpath("ans104", f), &len);
  item *it = item_decode(b, len, &err);
  if (!it) fail_msg("%s: decode failed: %s %s", f, err.code, err.msg);
  if (item_verify(it, &err) < 0) fail_msg("%s: verify failed: %s", f, err.msg);
  assert_int_equal(it->sig_type, json_integer_value(json_object_get(v, "signatureType")));
  assert_string_equal(it->id, json_string_value(json_object_get(v, "id")));
  char addr[ITEM_ADDR_MAX];
  assert_int_equal(item_owner_address(it, addr), 0);
  assert_string_equal(addr, json_string_value(json_object_get(v, "owner_address")));

  char s[128];
  if (it->has_target)
    b64_of(it->target, 32, s, sizeof s);
  else
    s[0] = 0;
  assert_string_equal(s, json_string_value(json_object_get(v, "target")));
  if (it->has_anchor)
    b64_of(it->anchor, 32, s, sizeof s);
  else
    s[0] = 0;
  assert_string_equal(s, json_string_value(json_object_get(v, "anchor")));

  json_t *tags = json_object_get(v, "tags");
  assert_int_equal(it->ntags, json_array_size(tags));
  for (size_t i = 0; i < it->ntags; i++) {
    json_t *t = json_array_get(tags, i);
    const char *n = json_string_value(json_object_get(t, "name"));
    const char *val = json_string_value(json_object_get(t, "value"));
    assert_int_equal(it->tags[i].name_len, strlen(n));
    assert_memory_equal(it->tags[i].name, n, strlen(n));
    assert_int_equal(it->tags[i].value_len, strlen(val));
    assert_memory_equal(it->tags[i].value, val, strlen(val));
  }
  assert_int_equal(it->tag_bytes_len, json_integer_value(json_object_get(v, "tag_bytes_len")));
  assert_int_equal(it->data_len, json_integer_value(json_object_get(v, "data_len")));
  uint8_t h[48];
  char hx[97];
  item_sha256(it->data, it->data_len, h);
  hex_of(h, 32, hx);
  assert_string_equal(hx, json_string_value(json_object_get(v, "data_sha256")));
  assert_int_equal(item_deep_hash(it, h, &err), 0);
  hex_of(h, 48, hx);
  assert_string_equal(hx, json_string_value(json_object_get(v, "deep_hash_hex")));
  if (it->sig_type == ITEM_SIG_ETHEREUM) {
    uint8_t e[32];
    item__eip191_hash(h, e);
    hex_of(e, 32, hx);
    assert_string_equal(hx, json_string_value(json_object_get(v, "eip191_hash_hex")));
    assert_int_equal(item_secp256k1_verify(it->sig, it->owner, h), 0);
  }
  assert_encode_equals(it, b, len, f);
  assert_json_roundtrip(it, f);
  assert_int_equal(item_tags_unique(it, &err), 0);
  item_free(it);
  free(b);
}

static void test_valid_vectors(void **st) {
  (void)st;
  json_t *idx = load_json(vpath("ans104", "index.json"));
  size_t i, n = 0;
  json_t *v;
  json_array_foreach(idx, i, v) {
    if (!json_is_true(json_object_get(v, "valid"))) continue;
    check_valid(v);
    n++;
  }
  assert_int_equal(n, 17);
  json_decref(idx);
}

/* Where each invalid vector must be stopped, and with which code. */
static const struct {
  const char *file;
  int at_verify; /* 0 = item_decode refuses it, 1 = decodes but item_verify refuses */
  const char *code;
} INVALID[] = {
    {"18_invalid_eth_sig_bitflip.bin", 1, "invalid_signature"},
    {"19_invalid_rsa_sig_bitflip.bin", 1, "invalid_signature"},
    {"20_invalid_data_bitflip.bin", 1, "invalid_signature"},
    {"21_invalid_tag_value_bitflip.bin", 1, "invalid_signature"},
    {"22_invalid_rsa_tag_value_bitflip.bin", 1, "invalid_signature"},
    {"23_invalid_truncated_header.bin", 0, "item_truncated"},
    {"24_invalid_truncated_data.bin", 1, "invalid_signature"},
    {"25_invalid_truncated_in_tags.bin", 0, "item_truncated"},
    {"26_invalid_target_flag_2.bin", 0, "item_bad_presence_byte"},
    {"27_invalid_anchor_flag_2.bin", 0, "item_bad_presence_byte"},
    {"28_invalid_tag_count_mismatch.bin", 0, "item_tag_count_mismatch"},
    {"29_invalid_tag_count_too_small.bin", 0, "item_tag_count_mismatch"},
    {"30_invalid_owner_bitflip.bin", 1, "invalid_signature"},
    {"31_invalid_unknown_signature_type.bin", 0, "item_bad_signature_type"},
    /* edge_cases.json: implementations disagree; vmnode takes the strict side. */
    {"32_edge_eth_high_s.bin", 1, "invalid_signature"},
    {"33_edge_eth_wrong_v.bin", 1, "invalid_signature"},
    {"34_edge_target_flag_2_no_target.bin", 0, "item_bad_presence_byte"},
    {"35_edge_tag_count_zero_with_tag_bytes.bin", 0, "item_tag_count_mismatch"},
};

static void check_invalid(const char *f) {
  size_t k;
  for (k = 0; k < sizeof INVALID / sizeof INVALID[0]; k++)
    if (strcmp(INVALID[k].file, f) == 0) break;
  if (k == sizeof INVALID / sizeof INVALID[0]) fail_msg("no expectation for %s", f);
  vn_err err = {0};
  item *it = decode_file("ans104", f, &err);
  if (!INVALID[k].at_verify) {
    if (it) fail_msg("%s: decoded but should fail with %s", f, INVALID[k].code);
    if (strcmp(err.code, INVALID[k].code) != 0)
      fail_msg("%s: got %s (%s), want %s", f, err.code, err.msg, INVALID[k].code);
    return;
  }
  if (!it) fail_msg("%s: decode failed (%s %s) but should reach verify", f, err.code, err.msg);
  if (item_verify(it, &err) == 0) fail_msg("%s: verified", f);
  if (strcmp(err.code, INVALID[k].code) != 0)
    fail_msg("%s: got %s (%s), want %s", f, err.code, err.msg, INVALID[k].code);
  item_free(it);
}

static void test_invalid_vectors(void **st) {
  (void)st;
  json_t *idx = load_json(vpath("ans104", "index.json"));
  size_t i, n = 0;
  json_t *v;
  json_array_foreach(idx, i, v) {
    if (json_is_true(json_object_get(v, "valid"))) continue;
    check_invalid(json_string_value(json_object_get(v, "file")));
    n++;
  }
  assert_int_equal(n, 14);
  json_decref(idx);
}

static void test_edge_cases(void **st) {
  (void)st;
  json_t *idx = load_json(vpath("ans104", "edge_cases.json"));
  size_t i;
  json_t *v;
  json_array_foreach(idx, i, v) check_invalid(json_string_value(json_object_get(v, "file")));
  assert_int_equal(json_array_size(idx), 4);
  json_decref(idx);
}

/* Signing each type-3 vector's content again reproduces its signature. */
static void test_resign_eth_vectors(void **st) {
  (void)st;
  json_t *idx = load_json(vpath("ans104", "index.json"));
  size_t i, n = 0;
  json_t *v;
  json_array_foreach(idx, i, v) {
    if (!json_is_true(json_object_get(v, "valid")) ||
        json_integer_value(json_object_get(v, "signatureType")) != 3)
      continue;
    const char *f = json_string_value(json_object_get(v, "file"));
    vn_err err = {0};
    item *it = decode_file("ans104", f, &err);
    assert_non_null(it);
    uint8_t old[65];
    memcpy(old, it->sig, 65);
    item_key *k = load_key(json_string_value(json_object_get(v, "signer_key")));
    assert_int_equal(item_sign(it, k, &err), 0);
    if (memcmp(old, it->sig, 65) != 0) fail_msg("%s: re-signing gave another signature", f);
    assert_string_equal(it->id, json_string_value(json_object_get(v, "id")));
    item_key_free(k);
    item_free(it);
    n++;
  }
  assert_int_equal(n, 12);
  json_decref(idx);
}

/* The 15 hymx module items: JSON parses, verifies, id = file name, binary
 * form equals the .bin, and re-signing reproduces the signature. */
static void test_hymx_modules(void **st) {
  (void)st;
  json_t *idx = load_json(vpath("hymx", "index.json"));
  item_key *k = load_key("hymx_test_key");
  size_t i;
  json_t *v;
  json_array_foreach(idx, i, v) {
    const char *jf = json_string_value(json_object_get(v, "json"));
    const char *bf = json_string_value(json_object_get(v, "bin"));
    vn_err err = {0};
    json_t *j = load_json(vpath("hymx", jf));
    item *it = item_from_json(j, &err);
    if (!it) fail_msg("%s: %s %s", jf, err.code, err.msg);
    if (item_verify(it, &err) < 0) fail_msg("%s: %s", jf, err.msg);
    char want[128];
    snprintf(want, sizeof want, "mod-%s.json", it->id);
    assert_string_equal(jf, want);
    assert_string_equal(it->id, json_string_value(json_object_get(v, "id")));
    char addr[ITEM_ADDR_MAX];
    item_owner_address(it, addr);
    assert_string_equal(addr, "0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51");
    assert_int_equal(it->ntags, json_array_size(json_object_get(v, "tags")));
    assert_int_equal(it->tag_bytes_len, json_integer_value(json_object_get(v, "tag_bytes_len")));
    assert_int_equal(item_tags_unique(it, &err), 0);
    size_t bl = 0;
    uint8_t *b = tu_read_file(vpath("hymx", bf), &bl);
    assert_encode_equals(it, b, bl, jf);
    item *bi = item_decode(b, bl, &err);
    assert_non_null(bi);
    assert_int_equal(item_verify(bi, &err), 0);
    assert_string_equal(bi->id, it->id);
    item_free(bi);
    free(b);
    /* Without tagsBy the canonical encoding is used: same item. */
    json_t *j2 = json_deep_copy(j);
    json_object_del(j2, "tagsBy");
    item *it2 = item_from_json(j2, &err);
    assert_non_null(it2);
    assert_int_equal(item_verify(it2, &err), 0);
    item_free(it2);
    json_decref(j2);

    uint8_t old[65];
    memcpy(old, it->sig, 65);
    assert_int_equal(item_sign(it, k, &err), 0);
    if (memcmp(old, it->sig, 65) != 0) fail_msg("%s: re-signing gave another signature", jf);
    assert_json_roundtrip(it, jf);
    item_free(it);
    json_decref(j);
  }
  assert_int_equal(json_array_size(idx), 15);
  item_key_free(k);
  json_decref(idx);
}

static void test_json_checks(void **st) {
  (void)st;
  vn_err err = {0};
  json_t *j = load_json(vpath("hymx", "mod-1i03Vpe8DljkUMBEEEvR0VmbJjvgZtP_ytZdThkVSMw.json"));
  /* tagsBy that does not encode the tags. */
  json_t *c = json_deep_copy(j);
  json_array_remove(json_object_get(c, "tags"), 0);
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_tags");
  json_decref(c);
  c = json_deep_copy(j);
  json_object_set_new(json_array_get(json_object_get(c, "tags"), 1), "value",
                      json_string("v9.9.9"));
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_tags");
  json_decref(c);
  /* tagsBy present without tags. */
  c = json_deep_copy(j);
  json_object_set_new(c, "tags", json_null());
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_tags");
  json_decref(c);
  /* An id that is not the signature's. */
  c = json_deep_copy(j);
  json_object_set_new(c, "id", json_string("0dW7nI5ZTJdO_BcEJgiSgqJVzAsVBxcS34qjWodP8YI"));
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_id");
  json_decref(c);
  /* Wrong sizes, wrong types. */
  c = json_deep_copy(j);
  json_object_set_new(c, "owner", json_string("AAAA"));
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_json");
  json_object_set_new(c, "signatureType", json_integer(7));
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_signature_type");
  json_object_set_new(c, "signatureType", json_string("3"));
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_json");
  json_decref(c);
  c = json_deep_copy(j);
  json_object_set_new(c, "target", json_string("abc"));
  assert_null(item_from_json(c, &err));
  assert_string_equal(err.code, "item_bad_json");
  json_decref(c);
  /* A non-canonical tagsBy (one negative-count block) that decodes to the
   * same tags is accepted as the signed bytes; it is not what was signed
   * here, so the signature fails. */
  c = json_deep_copy(j);
  item *it = item_from_json(j, &err);
  assert_non_null(it);
  size_t body = it->tag_bytes_len - 2; /* records between the count byte and the 0 */
  uint8_t alt[512];
  size_t o = 0;
  alt[o++] = 0x0b; /* zigzag(-6) */
  alt[o++] = (uint8_t)((body << 1) & 0x7f) | 0x80;
  alt[o++] = (uint8_t)(body >> 6);
  memcpy(alt + o, it->tag_bytes + 1, body + 1);
  o += body + 1;
  char *s = b64url_encode_alloc(alt, o);
  json_object_set_new(c, "tagsBy", json_string(s));
  free(s);
  item *it2 = item_from_json(c, &err);
  if (!it2) fail_msg("non-canonical tagsBy: %s %s", err.code, err.msg);
  assert_int_equal(it2->tag_bytes_len, o);
  assert_int_equal(item_verify(it2, &err), -1);
  assert_string_equal(err.code, "invalid_signature");
  item_free(it2);
  item_free(it);
  json_decref(c);
  assert_null(item_from_json(json_array_get(j, 0), &err));
  json_decref(j);
}

/* ---- signing round trips ---- */

static item *sample_item(void) {
  vn_err err = {0};
  item *it = item_new();
  assert_int_equal(item_set_target_b64(it, "7dMzg1r_CnK8zLuY32P-iVVpuMHe0ZUjLw4oH5nYfjw", &err), 0);
  uint8_t anchor[32];
  memset(anchor, 0x41, 32);
  item_set_anchor(it, anchor);
  assert_int_equal(item_add_tag(it, "Data-Protocol", "ao", &err), 0);
  assert_int_equal(item_add_tag(it, "Type", "Message", &err), 0);
  assert_int_equal(item_add_tag(it, "Empty", "", &err), 0);
  assert_int_equal(item_add_tag(it, "Grüße", "✓", &err), 0);
  assert_int_equal(item_set_data(it, (const uint8_t *)"hello world", 11), 0);
  return it;
}

static void sign_roundtrip(item_key *k) {
  vn_err err = {0};
  item *it = sample_item();
  assert_int_equal(item_sign(it, k, &err), 0);
  assert_int_equal(it->sig_type, item_key_sig_type(k));
  assert_int_equal(strlen(it->id), ITEM_ID_LEN);
  assert_int_equal(item_verify(it, &err), 0);
  char addr[ITEM_ADDR_MAX];
  item_owner_address(it, addr);
  assert_string_equal(addr, item_key_address(k));
  assert_string_equal(item_tag_get(it, "Type"), "Message");
  assert_null(item_tag_get(it, "Nope"));
  assert_non_null(item_tag_find(it, "Empty"));

  size_t len = 0;
  uint8_t *b = item_encode(it, &len, &err);
  assert_non_null(b);
  item *d = item_decode(b, len, &err);
  assert_non_null(d);
  assert_int_equal(item_verify(d, &err), 0);
  assert_string_equal(d->id, it->id);
  assert_encode_equals(d, b, len, "signed sample");
  assert_json_roundtrip(d, "signed sample");
  /* Tampering with any signed part breaks the signature. */
  d->data[0] ^= 1;
  assert_int_equal(item_verify(d, &err), -1);
  assert_string_equal(err.code, "invalid_signature");
  d->data[0] ^= 1;
  d->target[5] ^= 1;
  assert_int_equal(item_verify(d, &err), -1);
  d->target[5] ^= 1;
  d->tag_bytes[3] ^= 1;
  assert_int_equal(item_verify(d, &err), -1);
  d->tag_bytes[3] ^= 1;
  assert_int_equal(item_verify(d, &err), 0);
  /* A stale id is caught. */
  d->id[0] = d->id[0] == 'A' ? 'B' : 'A';
  assert_int_equal(item_verify(d, &err), -1);
  item_free(d);
  free(b);

  /* Adding a tag after signing needs a new signature. */
  assert_int_equal(item_add_tag(it, "Late", "x", &err), 0);
  assert_null(item_encode(it, &len, &err));
  assert_string_equal(err.code, "item_not_signed");
  assert_int_equal(item_sign(it, k, &err), 0);
  assert_int_equal(item_verify(it, &err), 0);
  item_free(it);
}

static void test_sign_eth(void **st) {
  (void)st;
  vn_err err = {0};
  item_key *k = item_key_generate(&err);
  assert_non_null(k);
  sign_roundtrip(k);
  char hx[67];
  assert_int_equal(item_key_to_hex(k, hx), 0);
  item_key *k2 = item_key_from_hex(hx, &err);
  assert_string_equal(item_key_address(k2), item_key_address(k));
  item_key_free(k2);
  item_key *k3 = item_key_generate(&err);
  assert_string_not_equal(item_key_address(k3), item_key_address(k));
  item_key_free(k3);

  /* v: 0/1 are read as 27/28; anything else is refused; the other v fails. */
  item *it = sample_item();
  assert_int_equal(item_sign(it, k, &err), 0);
  uint8_t msg[48];
  item_deep_hash(it, msg, &err);
  uint8_t sig[65];
  memcpy(sig, it->sig, 65);
  assert_int_equal(item_secp256k1_verify(sig, it->owner, msg), 0);
  sig[64] -= 27;
  assert_int_equal(item_secp256k1_verify(sig, it->owner, msg), 0);
  sig[64] ^= 1;
  assert_int_equal(item_secp256k1_verify(sig, it->owner, msg), -1);
  sig[64] = 29;
  assert_int_equal(item_secp256k1_verify(sig, it->owner, msg), -1);
  sig[64] = 2;
  assert_int_equal(item_secp256k1_verify(sig, it->owner, msg), -1);
  item_free(it);
  item_key_free(k);

  k = load_key("eth_key_1");
  sign_roundtrip(k);
  item_key_free(k);
}

static void test_sign_rsa(void **st) {
  (void)st;
  item_key *k = load_key("arweave_jwk_1");
  sign_roundtrip(k);
  /* The salt is the maximum (478 bytes), like arbundles: verify with that
   * salt length fixed. */
  vn_err err = {0};
  item *it = sample_item();
  assert_int_equal(item_sign(it, k, &err), 0);
  uint8_t msg[48];
  item_deep_hash(it, msg, &err);
  EVP_MD_CTX *mc = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  assert_int_equal(EVP_DigestVerifyInit(mc, &pc, EVP_sha256(), NULL, k->rsa), 1);
  EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256());
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 478);
  assert_int_equal(EVP_DigestVerify(mc, it->sig, it->sig_len, msg, 48), 1);
  EVP_MD_CTX_free(mc);
  item_free(it);
  item_key_free(k);
  /* From a file. */
  json_t *keys = load_json(vpath("ans104", "keys.json"));
  char path[] = "/tmp/vn_test_jwk_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  json_dumpf(json_object_get(json_array_get(json_object_get(keys, "arweave"), 0), "jwk"), f, 0);
  fclose(f);
  k = item_key_from_jwk_file(path, &err);
  unlink(path);
  assert_non_null(k);
  assert_string_equal(item_key_address(k),
                      json_string_value(json_object_get(
                          json_array_get(json_object_get(keys, "arweave"), 0), "address")));
  item_key_free(k);
  assert_null(item_key_from_jwk_file("/nonexistent/jwk.json", &err));
  assert_string_equal(err.code, "bad_key");
  json_decref(keys);
}

/* ---- decoder strictness ---- */

/* A type-3 item with zero signature/owner, the given u64 count and tag
 * bytes, and data "d". */
static uint8_t *raw_item(uint64_t count, uint64_t tbl_field, const uint8_t *tb, size_t tbl,
                         size_t *len) {
  size_t n = 2 + 65 + 65 + 2 + 16 + tbl + 1;
  uint8_t *b = calloc(1, n);
  b[0] = 3;
  size_t o = 2 + 65 + 65 + 2;
  for (int i = 0; i < 8; i++) b[o + i] = (uint8_t)(count >> (8 * i));
  for (int i = 0; i < 8; i++) b[o + 8 + i] = (uint8_t)(tbl_field >> (8 * i));
  o += 16;
  if (tbl) memcpy(b + o, tb, tbl);
  b[o + tbl] = 'd';
  *len = n;
  return b;
}

static const char *decode_code(uint64_t count, const uint8_t *tb, size_t tbl) {
  static vn_err err;
  size_t len = 0;
  uint8_t *b = raw_item(count, tbl, tb, tbl, &len);
  vn_err_clear(&err);
  item *it = item_decode(b, len, &err);
  free(b);
  if (it) {
    item_free(it);
    return "ok";
  }
  return err.code;
}

static item_tag *make_tags(size_t n, size_t name_len, size_t value_len) {
  item_tag *t = calloc(n, sizeof *t);
  for (size_t i = 0; i < n; i++) {
    t[i].name = malloc(name_len + 16);
    t[i].name_len = (size_t)snprintf(t[i].name, name_len + 16, "T%zu", i);
    if (name_len > t[i].name_len) {
      memset(t[i].name + t[i].name_len, 'n', name_len - t[i].name_len);
      t[i].name_len = name_len;
      t[i].name[name_len] = 0;
    }
    t[i].value = malloc(value_len + 1);
    memset(t[i].value, 'v', value_len);
    t[i].value[value_len] = 0;
    t[i].value_len = value_len;
  }
  return t;
}

static void test_tag_limits(void **st) {
  (void)st;
  vn_err err = {0};
  /* Builder. */
  item *it = item_new();
  char name[16];
  for (int i = 0; i < ITEM_MAX_TAGS; i++) {
    snprintf(name, sizeof name, "N%d", i);
    assert_int_equal(item_add_tag(it, name, "v", &err), 0);
  }
  assert_int_equal(item_add_tag(it, "one-too-many", "v", &err), -1);
  assert_string_equal(err.code, "item_too_many_tags");
  item_free(it);
  char *big = malloc(4000);
  memset(big, 'x', 4000);
  struct {
    size_t name_len, value_len;
    const char *code;
  } bc[] = {
      {1024, 1, NULL}, {1025, 1, "item_tag_too_long"},
      {1, 3072, NULL}, {1, 3073, "item_tag_too_long"},
      {1, 0, NULL},
  };
  for (size_t c = 0; c < sizeof bc / sizeof bc[0]; c++) {
    char *nm = strndup(big, bc[c].name_len), *vl = strndup(big, bc[c].value_len);
    it = item_new();
    vn_err_clear(&err);
    int rc = item_add_tag(it, nm, vl, &err);
    if (bc[c].code) {
      assert_int_equal(rc, -1);
      assert_string_equal(err.code, bc[c].code);
      assert_int_equal(it->ntags, 0);
    } else {
      assert_int_equal(rc, 0);
    }
    item_free(it);
    free(nm);
    free(vl);
  }
  /* All tags together stay within 4096 bytes. */
  it = item_new();
  big[3000] = 0;
  assert_int_equal(item_add_tag(it, "a", big, &err), 0);
  assert_int_equal(item_add_tag(it, "b", big + 2000, &err), 0);
  assert_int_equal(item_add_tag(it, "c", big + 2000, &err), -1);
  assert_string_equal(err.code, "item_tags_too_large");
  assert_int_equal(it->ntags, 2);
  assert_int_equal(item_add_tag(it, "bad\xff", "v", &err), -1);
  assert_string_equal(err.code, "item_bad_tags");
  item_free(it);
  free(big);

  /* Decoder, from the wire. */
  /* A value over 3072 bytes is accepted from the wire (real hymx modules
   * carry one) as long as all tag bytes fit in 4096. */
  struct {
    size_t n, nl, vl;
    uint64_t count;
    const char *code;
  } cases[] = {
      {128, 4, 1, 128, "ok"},
      {129, 4, 1, 129, "item_too_many_tags"}, /* u64 count over the limit */
      {129, 4, 1, 128, "item_too_many_tags"}, /* Avro holds more than the limit */
      {1, 1024, 1, 1, "ok"},
      {1, 1025, 1, 1, "item_tag_too_long"},
      {1, 4, 3072, 1, "ok"},
      {1, 4, 3073, 1, "ok"},
      {1, 4, 4087, 1, "ok"},                  /* exactly 4096 tag bytes */
      {1, 4, 4088, 1, "item_tags_too_large"}, /* 4097 */
      {2, 1024, 3000, 2, "item_tags_too_large"},
      {3, 4, 1, 2, "item_tag_count_mismatch"},
      {2, 4, 1, 3, "item_tag_count_mismatch"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    item_tag *t = make_tags(cases[c].n, cases[c].nl, cases[c].vl);
    size_t tbl;
    uint8_t *tb = item_avro_encode_tags(t, cases[c].n, &tbl);
    assert_non_null(tb);
    const char *got = decode_code(cases[c].count, tb, tbl);
    if (strcmp(got, cases[c].code) != 0)
      fail_msg("tag case %zu: got %s want %s", c, got, cases[c].code);
    item_tag *dt;
    size_t dn;
    int rc = item_avro_decode_tags(tb, tbl, &dt, &dn, &err);
    int want_ok =
        strcmp(cases[c].code, "ok") == 0 || strcmp(cases[c].code, "item_tag_count_mismatch") == 0;
    assert_int_equal(rc == 0, want_ok);
    if (rc < 0 && strcmp(err.code, cases[c].code) != 0)
      fail_msg("tag case %zu standalone: got %s", c, err.code);
    if (rc == 0) item_tags_free(dt, dn);
    item_tags_free(t, cases[c].n);
    free(tb);
  }
}

static void test_avro_forms(void **st) {
  (void)st;
  /* "a"="b", "cd"="" as: one positive block; two blocks; a negative block
   * with its byte size; and malformed variants. */
  static const struct {
    const char *name;
    const uint8_t b[24];
    size_t len;
    uint64_t count;
    const char *code;
  } cases[] = {
      {"one block", {4, 2, 'a', 2, 'b', 4, 'c', 'd', 0, 0}, 10, 2, "ok"},
      {"two blocks", {2, 2, 'a', 2, 'b', 2, 4, 'c', 'd', 0, 0}, 11, 2, "ok"},
      {"negative block", {3, 16, 2, 'a', 2, 'b', 4, 'c', 'd', 0, 0}, 11, 2, "ok"},
      {"neg + pos", {1, 8, 2, 'a', 2, 'b', 2, 4, 'c', 'd', 0, 0}, 12, 2, "ok"},
      {"overlong varints", {0x84, 0x00, 2, 'a', 2, 'b', 4, 'c', 'd', 0, 0}, 11, 2, "ok"},
      {"wrong block size", {3, 12, 2, 'a', 2, 'b', 4, 'c', 'd', 0, 0}, 11, 2, "item_bad_tags"},
      {"block size too big", {3, 40, 2, 'a', 2, 'b', 4, 'c', 'd', 0, 0}, 11, 2, "item_bad_tags"},
      {"no terminator", {4, 2, 'a', 2, 'b', 4, 'c', 'd', 0}, 9, 2, "item_bad_tags"},
      {"trailing byte", {4, 2, 'a', 2, 'b', 4, 'c', 'd', 0, 0, 0}, 11, 2, "item_bad_tags"},
      {"negative length", {2, 1, 'a', 2, 'b', 0}, 6, 1, "item_bad_tags"},
      {"length past end", {2, 2, 'a', 20, 'b', 0}, 6, 1, "item_bad_tags"},
      {"bad utf-8", {2, 2, 0xc0, 2, 'b', 0}, 6, 1, "item_bad_tags"},
      {"surrogate", {2, 2, 'a', 6, 0xed, 0xa0, 0x80, 0}, 8, 1, "item_bad_tags"},
      {"NUL inside", {2, 2, 'a', 4, 'b', 0, 0}, 7, 1, "ok"},
      {"11-byte varint",
       {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0},
       12,
       1,
       "item_bad_tags"},
      {"min int64 count",
       {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0},
       11,
       1,
       "item_bad_tags"},
      {"huge count",
       {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0},
       11,
       1,
       "item_too_many_tags"},
      {"only terminator", {0}, 1, 0, "item_tag_count_mismatch"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *got = decode_code(cases[c].count, cases[c].b, cases[c].len);
    if (strcmp(got, cases[c].code) != 0)
      fail_msg("avro %s: got %s want %s", cases[c].name, got, cases[c].code);
  }
  /* Decoded non-canonical forms give the tags, and encode keeps the bytes. */
  vn_err err = {0};
  size_t len = 0;
  uint8_t *b = raw_item(2, 12, cases[3].b, 12, &len);
  item *it = item_decode(b, len, &err);
  assert_non_null(it);
  assert_int_equal(it->ntags, 2);
  assert_string_equal(it->tags[0].name, "a");
  assert_string_equal(it->tags[0].value, "b");
  assert_string_equal(it->tags[1].name, "cd");
  assert_int_equal(it->tags[1].value_len, 0);
  assert_int_equal(it->data_len, 1);
  /* Zero signature and owner: decodes, but never verifies. */
  assert_int_equal(item_verify(it, &err), -1);
  assert_string_equal(err.code, "invalid_signature");
  assert_encode_equals(it, b, len, "neg + pos");
  assert_json_roundtrip(it, "neg + pos");
  item_free(it);
  free(b);
  /* Standalone decoder: zero bytes = no tags; canonical encoding of 0 tags is
   * zero bytes. */
  item_tag *t;
  size_t n;
  assert_int_equal(item_avro_decode_tags(NULL, 0, &t, &n, &err), 0);
  assert_int_equal(n, 0);
  uint8_t *e = item_avro_encode_tags(NULL, 0, &n);
  assert_non_null(e);
  assert_int_equal(n, 0);
  free(e);
  /* The README's example encoding. */
  item_tag one = {"Content-Type", 12, "text/plain", 10};
  e = item_avro_encode_tags(&one, 1, &n);
  assert_int_equal(n, 26);
  assert_memory_equal(e,
                      "\x02\x18"
                      "Content-Type"
                      "\x14"
                      "text/plain"
                      "\x00",
                      26);
  free(e);
}

static void test_decode_malformed(void **st) {
  (void)st;
  vn_err err = {0};
  /* Every prefix of a valid item either fails to decode (if cut before the
   * data) or decodes and fails to verify; nothing else. */
  const char *files[] = {"03_eth_target_anchor.bin", "13_rsa_target_anchor_tags.bin"};
  for (int f = 0; f < 2; f++) {
    size_t len = 0;
    uint8_t *b = tu_read_file(vpath("ans104", files[f]), &len);
    item *full = item_decode(b, len, &err);
    assert_non_null(full);
    size_t data_start = len - full->data_len;
    item_free(full);
    for (size_t cut = 0; cut < len; cut++) {
      uint8_t *p = malloc(cut ? cut : 1);
      memcpy(p, b, cut);
      vn_err_clear(&err);
      item *it = item_decode(p, cut, &err);
      if (cut < data_start) {
        if (it) fail_msg("%s cut at %zu decoded", files[f], cut);
        assert_string_equal(err.code, "item_truncated");
      } else {
        assert_non_null(it);
        assert_int_equal(item_verify(it, &err), -1);
        item_free(it);
      }
      free(p);
    }
    free(b);
  }
  /* Lengths from the wire that would overflow an offset. */
  uint8_t tb[1] = {0};
  size_t len = 0;
  uint8_t *b = raw_item(1, UINT64_MAX, tb, 0, &len);
  assert_null(item_decode(b, len, &err));
  assert_string_equal(err.code, "item_truncated");
  free(b);
  b = raw_item(1, 0x8000000000000000ULL, tb, 0, &len);
  assert_null(item_decode(b, len, &err));
  assert_string_equal(err.code, "item_truncated");
  free(b);
  b = raw_item(UINT64_MAX, 0, tb, 0, &len);
  assert_null(item_decode(b, len, &err));
  assert_string_equal(err.code, "item_too_many_tags");
  free(b);
  /* No tags and no data: the smallest item. */
  b = raw_item(0, 0, tb, 0, &len);
  item *it = item_decode(b, len - 1, &err);
  assert_non_null(it);
  assert_int_equal(it->ntags, 0);
  assert_null(it->tag_bytes);
  assert_int_equal(it->data_len, 0);
  item_free(it);
  /* Other signature types get their own sizes; unknown ones are refused. */
  b[0] = 2; /* ed25519: 64 + 32 bytes; the 3-type layout is too long, rest = data */
  it = item_decode(b, len, &err);
  assert_non_null(it);
  assert_int_equal(it->sig_len, 64);
  assert_int_equal(it->owner_len, 32);
  assert_int_equal(item_verify(it, &err), -1);
  item_free(it);
  b[0] = 0;
  assert_null(item_decode(b, len, &err));
  assert_string_equal(err.code, "item_bad_signature_type");
  b[0] = 3;
  b[1] = 1; /* 259 */
  assert_null(item_decode(b, len, &err));
  assert_string_equal(err.code, "item_bad_signature_type");
  free(b);
  assert_null(item_decode((const uint8_t *)"\x03", 1, &err));
  assert_string_equal(err.code, "item_truncated");
  /* An unsigned item cannot be encoded or verified. */
  it = item_new();
  assert_null(item_encode(it, &len, &err));
  assert_string_equal(err.code, "item_bad_signature_type");
  it->sig_type = 3;
  assert_null(item_encode(it, &len, &err));
  assert_string_equal(err.code, "item_not_signed");
  assert_int_equal(item_verify(it, &err), -1);
  item_free(it);
}

static void test_tags_unique(void **st) {
  (void)st;
  vn_err err = {0};
  item *it = item_new();
  item_add_tag(it, "A", "1", &err);
  item_add_tag(it, "B", "2", &err);
  assert_int_equal(item_tags_unique(it, &err), 0);
  item_add_tag(it, "AB", "3", &err);
  assert_int_equal(item_tags_unique(it, &err), 0);
  item_add_tag(it, "B", "4", &err);
  assert_int_equal(item_tags_unique(it, &err), -1);
  assert_string_equal(err.code, "duplicate_tag");
  assert_string_equal(item_tag_get(it, "B"), "2"); /* first wins */
  item_free(it);
}

/* ed25519 (types 2 and 4): signed here with OpenSSL, verified by the item
 * code. */
static void test_ed25519(void **st) {
  (void)st;
  EVP_PKEY *pk = NULL;
  EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
  assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
  assert_int_equal(EVP_PKEY_keygen(kc, &pk), 1);
  EVP_PKEY_CTX_free(kc);
  for (uint16_t type = 2; type <= 4; type += 2) {
    vn_err err = {0};
    item *it = sample_item();
    it->sig_type = type;
    it->owner = malloc(32);
    it->owner_len = 32;
    size_t pl = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, it->owner, &pl), 1);
    it->tag_bytes = item_avro_encode_tags(it->tags, it->ntags, &it->tag_bytes_len);
    uint8_t msg[48];
    assert_int_equal(item_deep_hash(it, msg, &err), 0);
    it->sig = malloc(64);
    it->sig_len = 64;
    size_t sl = 64;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(mc, NULL, NULL, NULL, pk), 1);
    assert_int_equal(EVP_DigestSign(mc, it->sig, &sl, msg, 48), 1);
    EVP_MD_CTX_free(mc);
    assert_int_equal(item_verify(it, &err), 0);
    size_t len = 0;
    uint8_t *b = item_encode(it, &len, &err);
    item *d = item_decode(b, len, &err);
    assert_non_null(d);
    assert_int_equal(item_verify(d, &err), 0);
    char addr[ITEM_ADDR_MAX];
    assert_int_equal(item_owner_address(d, addr), 0);
    assert_int_equal(strlen(addr), 43);
    d->sig[10] ^= 1;
    assert_int_equal(item_verify(d, &err), -1);
    item_free(d);
    free(b);
    item_free(it);
  }
  EVP_PKEY_free(pk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keccak_known),       cmocka_unit_test(test_b64url),
      cmocka_unit_test(test_key_address),        cmocka_unit_test(test_valid_vectors),
      cmocka_unit_test(test_invalid_vectors),    cmocka_unit_test(test_edge_cases),
      cmocka_unit_test(test_resign_eth_vectors), cmocka_unit_test(test_hymx_modules),
      cmocka_unit_test(test_json_checks),        cmocka_unit_test(test_sign_eth),
      cmocka_unit_test(test_sign_rsa),           cmocka_unit_test(test_tag_limits),
      cmocka_unit_test(test_avro_forms),         cmocka_unit_test(test_decode_malformed),
      cmocka_unit_test(test_tags_unique),        cmocka_unit_test(test_ed25519),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
