/* key.c - signing keys (secp256k1 hex keys, Arweave RSA JWKs) and item_sign.
 *
 * A key is immutable after it is loaded, so one key may sign from several
 * threads at once. Secret material is wiped when the key is freed. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/enc.h"
#include "item/internal.h"

static item_key *key_new(uint16_t type) {
  item_key *k = calloc(1, sizeof *k);
  if (k) k->type = type;
  return k;
}

void item_key_free(item_key *k) {
  if (!k) return;
  OPENSSL_cleanse(k->sec, sizeof k->sec);
  free(k->owner);
  EVP_PKEY_free(k->rsa);
  free(k);
}

static item_key *secp_key(const uint8_t sec[32], vn_err *err) {
  item_key *k = key_new(ITEM_SIG_ETHEREUM);
  if (!k || !(k->owner = malloc(65))) {
    item_key_free(k);
    vn_errf(err, "oom", "out of memory loading a key");
    return NULL;
  }
  k->owner_len = 65;
  memcpy(k->sec, sec, 32);
  if (item__secp_pubkey(sec, k->owner) < 0) {
    item_key_free(k);
    vn_errf(err, "bad_key", "not a valid secp256k1 private key (zero or >= the group order)");
    return NULL;
  }
  item_eth_address(k->owner, k->address);
  return k;
}

item_key *item_key_from_hex(const char *hex, vn_err *err) {
  const char *h = hex;
  if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X')) h += 2;
  uint8_t sec[32];
  if (strlen(h) != 64 || hex_decode(h, sec, sizeof sec) != 32) {
    vn_errf(err, "bad_key", "a secp256k1 private key is 64 hex digits (optionally 0x-prefixed)");
    return NULL;
  }
  item_key *k = secp_key(sec, err);
  OPENSSL_cleanse(sec, sizeof sec);
  return k;
}

item_key *item_key_generate(vn_err *err) {
  uint8_t sec[32];
  /* Almost every 32-byte string is a valid secret (the chance of hitting
   * zero or >= n is ~2^-128), but check rather than assume. */
  for (int tries = 0; tries < 16; tries++) {
    if (getrandom(sec, sizeof sec, 0) != (ssize_t)sizeof sec) break;
    if (item__secp_seckey_valid(sec)) {
      item_key *k = secp_key(sec, err);
      OPENSSL_cleanse(sec, sizeof sec);
      return k;
    }
  }
  OPENSSL_cleanse(sec, sizeof sec);
  vn_errf(err, "rng_failed", "could not get random bytes for a new key");
  return NULL;
}

item_key *item_key_from_jwk(const json_t *jwk, vn_err *err) {
  item_key *k = key_new(ITEM_SIG_ARWEAVE);
  if (!k) {
    vn_errf(err, "oom", "out of memory loading a key");
    return NULL;
  }
  if (!(k->rsa = item__rsa_from_jwk(jwk, &k->owner, &k->owner_len, err))) {
    item_key_free(k);
    return NULL;
  }
  uint8_t h[32];
  item_sha256(k->owner, k->owner_len, h);
  b64url_encode(h, 32, k->address, sizeof k->address);
  return k;
}

item_key *item_key_from_jwk_file(const char *path, vn_err *err) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) {
    vn_errf(err, "bad_key", "cannot read JWK file %s: %s (line %d)", path, je.text, je.line);
    return NULL;
  }
  item_key *k = item_key_from_jwk(j, err);
  if (!k) vn_err_wrap(err, "%s", path);
  json_decref(j);
  return k;
}

int item_key_to_hex(const item_key *k, char out[67]) {
  if (k->type != ITEM_SIG_ETHEREUM) return -1;
  out[0] = '0';
  out[1] = 'x';
  hex_encode(k->sec, 32, out + 2, 65);
  return 0;
}

uint16_t item_key_sig_type(const item_key *k) {
  return k->type;
}

const char *item_key_address(const item_key *k) {
  return k->address;
}

int item_sign(item *it, const item_key *k, vn_err *err) {
  size_t sl, ol;
  item__sig_sizes(k->type, &sl, &ol);
  uint8_t *owner = malloc(k->owner_len);
  uint8_t *sig = malloc(sl);
  uint8_t *tb = NULL;
  size_t tbl = 0;
  if (it->ntags) tb = item_avro_encode_tags(it->tags, it->ntags, &tbl);
  if (tbl > ITEM_MAX_TAG_BYTES) {
    free(tb);
    return vn_errf(err, "item_tags_too_large", "%zu tag bytes; the limit is %d", tbl,
                   ITEM_MAX_TAG_BYTES);
  }
  if (!owner || !sig || (it->ntags && !tb)) {
    free(owner);
    free(sig);
    free(tb);
    return vn_errf(err, "oom", "out of memory signing an item");
  }
  memcpy(owner, k->owner, k->owner_len);
  free(it->owner);
  free(it->tag_bytes);
  free(it->sig);
  it->sig_type = k->type;
  it->owner = owner;
  it->owner_len = k->owner_len;
  it->tag_bytes = tb;
  it->tag_bytes_len = tbl;
  it->sig = NULL;
  it->sig_len = 0;
  it->id[0] = 0;

  uint8_t msg[48];
  if (item_deep_hash(it, msg, err) < 0) {
    free(sig);
    return -1;
  }
  int rc;
  size_t got = sl;
  if (k->type == ITEM_SIG_ETHEREUM) {
    rc = item__secp_sign(k->sec, msg, sig);
    if (rc < 0) vn_errf(err, "crypto_error", "secp256k1 signing failed");
  } else {
    rc = item__rsa_sign(k->rsa, msg, sig, &got, err);
    if (rc == 0 && got != sl) rc = vn_errf(err, "crypto_error", "RSA signature has %zu bytes", got);
  }
  if (rc < 0) {
    free(sig);
    return -1;
  }
  it->sig = sig;
  it->sig_len = sl;
  item__id_of(sig, sl, it->id);
  return 0;
}
