/* keccak.c - Keccak-256 as Ethereum uses it (the pre-FIPS padding 0x01).
 *
 * OpenSSL 3.0 only ships the FIPS-202 SHA3 variants (padding 0x06), so the
 * sponge is written here. It is small and only hashes short inputs (public
 * keys, 40-char addresses, 76-byte EIP-191 messages), so clarity wins over
 * speed: a plain 24-round Keccak-f[1600] over 25 lanes. */
#include <string.h>

#include "item/internal.h"

#define KECCAK_RATE 136 /* 1600 - 2 * 256 bits, in bytes */

static const uint64_t RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offsets and the pi permutation, walked in the order of the
 * standard "rho and pi combined" loop: lane PI[i] receives the previous lane
 * rotated by ROT[i]. */
static const unsigned ROT[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                 27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned PI[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                                15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

static inline uint64_t rol(uint64_t x, unsigned n) {
  return (x << n) | (x >> (64 - n));
}

static void keccak_f(uint64_t a[25]) {
  for (int round = 0; round < 24; round++) {
    uint64_t c[5], d;
    /* theta */
    for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; x++) {
      d = c[(x + 4) % 5] ^ rol(c[(x + 1) % 5], 1);
      for (int y = 0; y < 25; y += 5) a[y + x] ^= d;
    }
    /* rho + pi */
    uint64_t cur = a[1];
    for (int i = 0; i < 24; i++) {
      uint64_t t = a[PI[i]];
      a[PI[i]] = rol(cur, ROT[i]);
      cur = t;
    }
    /* chi */
    for (int y = 0; y < 25; y += 5) {
      uint64_t row[5];
      for (int x = 0; x < 5; x++) row[x] = a[y + x];
      for (int x = 0; x < 5; x++) a[y + x] = row[x] ^ (~row[(x + 1) % 5] & row[(x + 2) % 5]);
    }
    /* iota */
    a[0] ^= RC[round];
  }
}

/* Lanes are little-endian regardless of the host. */
static void xor_block(uint64_t a[25], const uint8_t *b) {
  for (int i = 0; i < KECCAK_RATE / 8; i++) {
    uint64_t v = 0;
    for (int j = 7; j >= 0; j--) v = v << 8 | b[8 * i + j];
    a[i] ^= v;
  }
}

void item__keccak(const uint8_t *in, size_t n, uint8_t pad, uint8_t out[32]) {
  uint64_t a[25] = {0};
  while (n >= KECCAK_RATE) {
    xor_block(a, in);
    keccak_f(a);
    in += KECCAK_RATE;
    n -= KECCAK_RATE;
  }
  uint8_t last[KECCAK_RATE] = {0};
  if (n) memcpy(last, in, n);
  last[n] ^= pad;
  last[KECCAK_RATE - 1] ^= 0x80;
  xor_block(a, last);
  keccak_f(a);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++) out[8 * i + j] = (uint8_t)(a[i] >> (8 * j));
}

void item_keccak256(const uint8_t *in, size_t n, uint8_t out[32]) {
  item__keccak(in, n, 0x01, out);
}

void item__eip191_hash(const uint8_t msg48[48], uint8_t out[32]) {
  static const char prefix[] =
      "\x19"
      "Ethereum Signed Message:\n48";
  uint8_t buf[sizeof prefix - 1 + 48];
  memcpy(buf, prefix, sizeof prefix - 1);
  memcpy(buf + sizeof prefix - 1, msg48, 48);
  item_keccak256(buf, sizeof buf, out);
}
