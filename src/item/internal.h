/* internal.h - shared between the source files of src/item/; not a public header.
 *
 * The public contract is item.h. What is here is plumbing: the per-type
 * signature sizes, the signature back ends (secp256k1, RSA-PSS, ed25519),
 * tag validation shared by the decoder, the builder and the JSON reader, and
 * the key struct that key.c owns. */
#ifndef VN_ITEM_INTERNAL_H
#define VN_ITEM_INTERNAL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "item/item.h"

/* Signature and owner sizes of a signature type; 0 when the type is unknown. */
int item__sig_sizes(uint16_t type, size_t *sig_len, size_t *owner_len);

/* Fetched once (pthread_once) and shared: OpenSSL 3 fetches are cheap but not
 * free, and the deep hash runs ~30 digests per item. */
const EVP_MD *item__md_sha256(void);
const EVP_MD *item__md_sha384(void);

/* Keccak sponge with rate 136 and an explicit domain padding byte: 0x01 is
 * Ethereum's Keccak-256, 0x06 is FIPS-202 SHA3-256 (used to cross-check the
 * permutation against OpenSSL in the tests). */
void item__keccak(const uint8_t *in, size_t n, uint8_t pad, uint8_t out[32]);

/* EIP-191 digest of a 48-byte deep hash:
 * keccak256("\x19Ethereum Signed Message:\n48" || msg48). */
void item__eip191_hash(const uint8_t msg48[48], uint8_t out[32]);

/* The Avro tag bytes of an item are at most this long. arbundles (and the
 * bundlers built on it) refuse items above it; it is what actually bounds a
 * tag value on the network (see docs/items.md). Error "item_tags_too_large". */
#define ITEM_MAX_TAG_BYTES 4096

/* Tag validation shared by every path that creates tags: length limits and
 * UTF-8 (strict: no overlong forms, no surrogates, nothing above U+10FFFF).
 * Names are limited to ITEM_MAX_TAG_NAME everywhere. Values are limited to
 * ITEM_MAX_TAG_VALUE only when `building` (tags vmnode itself signs): items
 * from the wire may carry longer values as long as all tag bytes fit in
 * ITEM_MAX_TAG_BYTES, because real hymx modules do.
 * Error codes "item_tag_too_long" and "item_bad_tags". */
int item__check_tag(const char *name, size_t name_len, const char *value, size_t value_len,
                    int building, vn_err *err);
int item__utf8_valid(const uint8_t *s, size_t n);
/* Exact size of item_avro_encode_tags' output; SIZE_MAX if absurd. */
size_t item__avro_tags_size(const item_tag *tags, size_t n);

/* The 43-char id of a signature. */
void item__id_of(const uint8_t *sig, size_t sig_len, char out[ITEM_ID_LEN + 1]);

/* ---- secp256k1 (sig_eth.c) ---- */
/* Public key of a 32-byte secret; 0 or -1 when the secret is not valid. */
int item__secp_pubkey(const uint8_t sec[32], uint8_t pub65[65]);
int item__secp_seckey_valid(const uint8_t sec[32]);
/* EIP-191 sign a 48-byte deep hash: r||s||v, v = 27 + recid, RFC 6979. */
int item__secp_sign(const uint8_t sec[32], const uint8_t msg48[48], uint8_t sig65[65]);

/* ---- RSA (sig_rsa.c) ---- */
/* 0 when sig (512 B) is an RSA-PSS-SHA256 signature of msg48 under modulus n
 * (512 B) with e = 65537; the salt length is auto-detected. */
int item__rsa_verify(const uint8_t *n, size_t n_len, const uint8_t *sig, size_t sig_len,
                     const uint8_t msg48[48]);
/* Sign with salt length = maximum (what arbundles / Node's crypto do); sig
 * receives *sig_len = modulus bytes. */
int item__rsa_sign(EVP_PKEY *pkey, const uint8_t msg48[48], uint8_t *sig, size_t *sig_len,
                   vn_err *err);
/* Build a private key from JWK fields; *n_out gets the modulus (malloc'd). */
EVP_PKEY *item__rsa_from_jwk(const json_t *jwk, uint8_t **n_out, size_t *n_len, vn_err *err);

/* ---- ed25519 (sig_ed25519.c) ---- */
int item__ed25519_verify(const uint8_t pub[32], const uint8_t sig[64], const uint8_t *msg,
                         size_t n);

/* ---- keys (key.c) ---- */
struct item_key {
  uint16_t type;   /* ITEM_SIG_ETHEREUM or ITEM_SIG_ARWEAVE */
  uint8_t sec[32]; /* secp256k1 secret */
  uint8_t *owner;  /* 65-byte public key or 512-byte modulus */
  size_t owner_len;
  EVP_PKEY *rsa; /* RSA private key */
  char address[ITEM_ADDR_MAX];
};

#endif
