/* sig_eth.c - type 3 (Ethereum secp256k1, EIP-191) signatures and addresses.
 *
 * Verification recovers the public key from r, s and the recovery id in v and
 * compares it with the owner, byte for byte. That checks v as well (a flipped
 * v recovers another key), and high-S signatures are refused first: the
 * malleated twin (r, n - s, v ^ 1) recovers the same key but has a different
 * id, so accepting it would let anyone re-post a message under a second id.
 *
 * One libsecp256k1 context is created on first use (pthread_once), randomized
 * against side channels, and then only read: libsecp256k1 documents that a
 * context is safe to share between threads as long as nobody mutates it. */
#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/enc.h"
#include "item/internal.h"

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static secp256k1_context *ctx;

static void ctx_init(void) {
#ifdef SECP256K1_CONTEXT_NONE
  ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
#else
  ctx = secp256k1_context_create(SECP256K1_CONTEXT_SIGN | SECP256K1_CONTEXT_VERIFY);
#endif
  if (!ctx) return;
  uint8_t seed[32];
  if (getrandom(seed, sizeof seed, 0) == (ssize_t)sizeof seed) {
    /* Blinding only protects signing against side channels; a context
     * without it still computes correct results, so a failure is not fatal. */
    if (!secp256k1_context_randomize(ctx, seed)) memset(seed, 0, sizeof seed);
  }
  memset(seed, 0, sizeof seed);
}

static const secp256k1_context *secp(void) {
  pthread_once(&ctx_once, ctx_init);
  return ctx;
}

int item_eth_address(const uint8_t pub65[65], char out[ITEM_ADDR_MAX]) {
  if (pub65[0] != 0x04) return -1;
  uint8_t h[32];
  item_keccak256(pub65 + 1, 64, h);
  char lower[41];
  hex_encode(h + 12, 20, lower, sizeof lower);
  /* EIP-55: upper-case a hex letter when the matching nibble of
   * keccak256(lower-case hex) is >= 8. */
  uint8_t ch[32];
  item_keccak256((const uint8_t *)lower, 40, ch);
  out[0] = '0';
  out[1] = 'x';
  for (int i = 0; i < 40; i++) {
    unsigned nib = (i % 2 == 0) ? ch[i / 2] >> 4 : ch[i / 2] & 15;
    char c = lower[i];
    out[2 + i] = (c >= 'a' && c <= 'f' && nib >= 8) ? (char)(c - 'a' + 'A') : c;
  }
  out[42] = 0;
  return 0;
}

int item_secp256k1_verify(const uint8_t sig65[65], const uint8_t pub65[65],
                          const uint8_t msg48[48]) {
  const secp256k1_context *c = secp();
  if (!c || pub65[0] != 0x04) return -1;
  int v = sig65[64];
  int recid = v >= 27 ? v - 27 : v;
  if (recid != 0 && recid != 1) return -1; /* 2/3 (r >= n) never occur in practice */

  /* Low-S: normalize() returns 1 when it had to flip s. */
  secp256k1_ecdsa_signature plain;
  if (!secp256k1_ecdsa_signature_parse_compact(c, &plain, sig65)) return -1;
  if (secp256k1_ecdsa_signature_normalize(c, NULL, &plain)) return -1;

  secp256k1_ecdsa_recoverable_signature rs;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(c, &rs, sig65, recid)) return -1;
  uint8_t h[32];
  item__eip191_hash(msg48, h);
  secp256k1_pubkey pk;
  if (!secp256k1_ecdsa_recover(c, &pk, &rs, h)) return -1;
  uint8_t got[65];
  size_t gl = sizeof got;
  if (!secp256k1_ec_pubkey_serialize(c, got, &gl, &pk, SECP256K1_EC_UNCOMPRESSED) || gl != 65)
    return -1;
  return memcmp(got, pub65, 65) == 0 ? 0 : -1;
}

int item__secp_seckey_valid(const uint8_t sec[32]) {
  const secp256k1_context *c = secp();
  return c && secp256k1_ec_seckey_verify(c, sec);
}

int item__secp_pubkey(const uint8_t sec[32], uint8_t pub65[65]) {
  const secp256k1_context *c = secp();
  secp256k1_pubkey pk;
  size_t n = 65;
  if (!c || !secp256k1_ec_seckey_verify(c, sec)) return -1;
  if (!secp256k1_ec_pubkey_create(c, &pk, sec)) return -1;
  if (!secp256k1_ec_pubkey_serialize(c, pub65, &n, &pk, SECP256K1_EC_UNCOMPRESSED) || n != 65)
    return -1;
  return 0;
}

int item__secp_sign(const uint8_t sec[32], const uint8_t msg48[48], uint8_t sig65[65]) {
  const secp256k1_context *c = secp();
  if (!c) return -1;
  uint8_t h[32];
  item__eip191_hash(msg48, h);
  secp256k1_ecdsa_recoverable_signature rs;
  /* NULL nonce function = RFC 6979 without extra data, the same nonce that
   * ethers / noble-secp256k1 derive, so signatures are reproducible. The
   * result is always low-S. */
  if (!secp256k1_ecdsa_sign_recoverable(c, &rs, h, sec, NULL, NULL)) return -1;
  int recid = 0;
  if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(c, sig65, &recid, &rs)) return -1;
  sig65[64] = (uint8_t)(27 + recid);
  return 0;
}
