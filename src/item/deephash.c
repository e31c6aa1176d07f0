/* deephash.c - the ANS-104 signed message (SHA-384 "deep hash") and the
 * SHA-256 helpers (ids, addresses).
 *
 * DH(blob b) = SHA384(SHA384("blob" + decimal(len b)) || SHA384(b))
 * DH(list L) = fold: acc = SHA384("list" + decimal(len L)),
 *              then acc = SHA384(acc || DH(e)) for each element.
 * The message of an item is DH(["dataitem", "1", decimal(sig type), owner,
 * target or "", anchor or "", raw Avro tag bytes, data]). The signature type
 * element is missing from the published spec text but present in every real
 * implementation (arbundles, goar), so it is here too. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "item/internal.h"

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md256, *md384;

static void md_init(void) {
  md256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  md384 = EVP_MD_fetch(NULL, "SHA384", NULL);
}

/* A failed fetch means a broken OpenSSL install; fall back to the implicit
 * fetch so callers never see NULL. */
const EVP_MD *item__md_sha256(void) {
  pthread_once(&md_once, md_init);
  return md256 ? md256 : EVP_sha256();
}

const EVP_MD *item__md_sha384(void) {
  pthread_once(&md_once, md_init);
  return md384 ? md384 : EVP_sha384();
}

void item_sha256(const uint8_t *in, size_t n, uint8_t out[32]) {
  unsigned int len = 32;
  if (!EVP_Digest(in, n, out, &len, item__md_sha256(), NULL)) memset(out, 0, 32);
}

void item__id_of(const uint8_t *sig, size_t sig_len, char out[ITEM_ID_LEN + 1]) {
  uint8_t h[32];
  item_sha256(sig, sig_len, h);
  b64url_encode(h, 32, out, ITEM_ID_LEN + 1);
}

int item__sig_sizes(uint16_t type, size_t *sig_len, size_t *owner_len) {
  switch (type) {
    case ITEM_SIG_ARWEAVE:
      *sig_len = 512, *owner_len = 512;
      return 1;
    case ITEM_SIG_ED25519:
    case ITEM_SIG_SOLANA:
      *sig_len = 64, *owner_len = 32;
      return 1;
    case ITEM_SIG_ETHEREUM:
      *sig_len = 65, *owner_len = 65;
      return 1;
    default:
      *sig_len = 0, *owner_len = 0;
      return 0;
  }
}

/* One SHA-384 over up to two parts, reusing the caller's context. */
static int h384(EVP_MD_CTX *c, const void *a, size_t an, const void *b, size_t bn,
                uint8_t out[48]) {
  if (!EVP_DigestInit_ex2(c, item__md_sha384(), NULL)) return -1;
  if (an && !EVP_DigestUpdate(c, a, an)) return -1;
  if (bn && !EVP_DigestUpdate(c, b, bn)) return -1;
  return EVP_DigestFinal_ex(c, out, NULL) ? 0 : -1;
}

static int dh_blob(EVP_MD_CTX *c, const uint8_t *b, size_t n, uint8_t out[48]) {
  char tag[32];
  int tn = snprintf(tag, sizeof tag, "blob%zu", n);
  uint8_t both[96];
  if (h384(c, tag, (size_t)tn, NULL, 0, both) < 0) return -1;
  if (h384(c, b, n, NULL, 0, both + 48) < 0) return -1;
  return h384(c, both, 96, NULL, 0, out);
}

/* acc = SHA384(acc || DH(blob)) */
static int fold(EVP_MD_CTX *c, uint8_t acc[48], const uint8_t *p, size_t n) {
  uint8_t e[48];
  if (dh_blob(c, p, n, e) < 0) return -1;
  return h384(c, acc, 48, e, 48, acc);
}

/* The first three list elements ("dataitem", "1", the type) are the same for
 * every item of a type: fold them once per type. */
static int prefix(EVP_MD_CTX *c, unsigned type, uint8_t acc[48]) {
  char t[8];
  int tn = snprintf(t, sizeof t, "%u", type);
  if (h384(c, "list8", 5, NULL, 0, acc) < 0) return -1;
  if (fold(c, acc, (const uint8_t *)"dataitem", 8) < 0) return -1;
  if (fold(c, acc, (const uint8_t *)"1", 1) < 0) return -1;
  return fold(c, acc, (const uint8_t *)t, (size_t)tn);
}

#define PREFIX_TYPES 5 /* types 0..4 cached */
static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;
static uint8_t prefix_acc[PREFIX_TYPES][48];
static int prefix_ok;

static void prefix_init(void) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c != NULL;
  for (unsigned t = 0; ok && t < PREFIX_TYPES; t++) ok = prefix(c, t, prefix_acc[t]) == 0;
  EVP_MD_CTX_free(c);
  prefix_ok = ok;
}

int item_deep_hash(const item *it, uint8_t out[48], vn_err *err) {
  /* Tags added since the last signature have no raw bytes yet: hash the
   * canonical encoding the signer will produce. */
  uint8_t *tmp_tags = NULL;
  const uint8_t *tb = it->tag_bytes;
  size_t tbl = it->tag_bytes_len;
  if (it->ntags && !tb) {
    tmp_tags = item_avro_encode_tags(it->tags, it->ntags, &tbl);
    if (!tmp_tags) return vn_errf(err, "oom", "out of memory encoding tags");
    tb = tmp_tags;
  }
  pthread_once(&prefix_once, prefix_init);
  int rc = -1;
  uint8_t acc[48];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  if (!c) goto done;
  if (prefix_ok && it->sig_type < PREFIX_TYPES)
    memcpy(acc, prefix_acc[it->sig_type], 48);
  else if (prefix(c, it->sig_type, acc) < 0)
    goto done;
  if (fold(c, acc, it->owner, it->owner_len) < 0 ||
      fold(c, acc, it->has_target ? it->target : NULL, it->has_target ? 32 : 0) < 0 ||
      fold(c, acc, it->has_anchor ? it->anchor : NULL, it->has_anchor ? 32 : 0) < 0 ||
      fold(c, acc, tb, tbl) < 0 || fold(c, acc, it->data, it->data_len) < 0)
    goto done;
  memcpy(out, acc, 48);
  rc = 0;
done:
  EVP_MD_CTX_free(c);
  free(tmp_tags);
  if (rc < 0) vn_errf(err, "crypto_error", "SHA-384 failed while computing the deep hash");
  return rc;
}
