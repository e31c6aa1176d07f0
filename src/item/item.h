/* item.h - ANS-104 data items: decode, encode, sign, verify, JSON form.
 *
 * An `item` owns all its memory; item_free() releases it. Tag names and values
 * are byte strings that are also NUL-terminated for convenience (a NUL inside
 * a tag is allowed by the format, so use the lengths when it matters).
 *
 * Signature types: 1 Arweave RSA-PSS-4096 (sign + verify), 2 ed25519
 * (verify), 3 Ethereum secp256k1 with EIP-191 (sign + verify), 4 Solana
 * ed25519 (verify).
 *
 * Strictness (see docs/items.md): presence bytes other than 0/1, a u64 tag
 * count that disagrees with the Avro bytes, more than ITEM_MAX_TAGS tags,
 * names over 1024 bytes, more than 4096 Avro tag bytes, tags that are not
 * UTF-8, high-S secp256k1 signatures and a v byte that does not recover the
 * owner are all rejected. Values over 3072 bytes are accepted from the wire
 * (real hymx modules carry longer ones) but never built or signed here. */
#ifndef VN_ITEM_H
#define VN_ITEM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ITEM_SIG_ARWEAVE 1
#define ITEM_SIG_ED25519 2
#define ITEM_SIG_ETHEREUM 3
#define ITEM_SIG_SOLANA 4

#define ITEM_MAX_TAGS 128
#define ITEM_MAX_TAG_NAME 1024
#define ITEM_MAX_TAG_VALUE 3072
#define ITEM_ID_LEN 43      /* base64url of 32 bytes, without NUL */
#define ITEM_ADDR_MAX 64    /* enough for "0x" + 40 hex or a 43-char Arweave address + NUL */

typedef struct item_tag {
  char *name; /* NUL-terminated, name_len bytes before the NUL */
  size_t name_len;
  char *value;
  size_t value_len;
} item_tag;

typedef struct item {
  uint16_t sig_type;
  uint8_t *sig;
  size_t sig_len;
  uint8_t *owner;
  size_t owner_len;
  int has_target;
  uint8_t target[32];
  int has_anchor;
  uint8_t anchor[32];
  item_tag *tags;
  size_t ntags;
  uint8_t *tag_bytes; /* raw Avro bytes as signed (NULL when no tags) */
  size_t tag_bytes_len;
  uint8_t *data;
  size_t data_len;
  char id[ITEM_ID_LEN + 1]; /* "" until signed or decoded */
} item;

/* Decode a binary item; copies everything it keeps. Checks the layout and
 * tag limits but not the signature (see item_verify). Error codes:
 * "item_truncated", "item_bad_signature_type", "item_bad_presence_byte",
 * "item_bad_tags", "item_too_many_tags", "item_tag_too_long",
 * "item_tag_count_mismatch". */
item *item_decode(const uint8_t *buf, size_t len, vn_err *err);

/* Encode to the binary form; malloc'd, *len set. The item must be signed. */
uint8_t *item_encode(const item *it, size_t *len, vn_err *err);

/* Verify the signature against the owner. Error "invalid_signature" (or
 * "item_bad_signature_type" for a type we cannot verify). */
int item_verify(const item *it, vn_err *err);

/* The 48-byte message that is signed (deep hash). */
int item_deep_hash(const item *it, uint8_t out[48], vn_err *err);

/* The signer's address: EIP-55 "0x…" for type 3, base64url(sha256(owner))
 * for the others. Writes into out (ITEM_ADDR_MAX bytes). */
int item_owner_address(const item *it, char out[ITEM_ADDR_MAX]);

/* First tag with this name, or NULL. */
const item_tag *item_tag_find(const item *it, const char *name);
/* Its value, or NULL. */
const char *item_tag_get(const item *it, const char *name);
/* 0 when all tag names are distinct, else -1 with "duplicate_tag". */
int item_tags_unique(const item *it, vn_err *err);

/* Building: an empty unsigned item; add target/anchor/tags/data, then sign. */
item *item_new(void);
int item_set_target_b64(item *it, const char *b64url, vn_err *err); /* 32 bytes */
void item_set_target(item *it, const uint8_t target[32]);
void item_set_anchor(item *it, const uint8_t anchor[32]);
int item_add_tag(item *it, const char *name, const char *value, vn_err *err);
int item_set_data(item *it, const uint8_t *data, size_t len); /* copies */
void item_free(item *it);

/* JSON form (hymx BundleItem): {"signatureType","signature","owner","target",
 * "anchor","tags":[{"name","value"}],"data","id","tagsBy"}; binary fields are
 * base64url without padding. */
json_t *item_to_json(const item *it);
/* Parses the JSON form; the result is checked like a decoded item (tagsBy,
 * when present, must equal the Avro encoding of tags). */
item *item_from_json(const json_t *j, vn_err *err);

/* Avro tag encoding used by the signer; exported for tests and fuzzing. */
uint8_t *item_avro_encode_tags(const item_tag *tags, size_t n, size_t *len);
int item_avro_decode_tags(const uint8_t *buf, size_t len, item_tag **tags, size_t *n, vn_err *err);
void item_tags_free(item_tag *tags, size_t n);

/* ---- keys ---- */

typedef struct item_key item_key; /* opaque */

/* secp256k1 private key in hex, with or without 0x. */
item_key *item_key_from_hex(const char *hex, vn_err *err);
/* Arweave JWK (RSA, with private parts) from a file or parsed JSON. */
item_key *item_key_from_jwk_file(const char *path, vn_err *err);
item_key *item_key_from_jwk(const json_t *jwk, vn_err *err);
/* A new random secp256k1 key. */
item_key *item_key_generate(vn_err *err);
/* Hex of a secp256k1 private key ("0x…", 67 bytes with NUL); -1 for RSA. */
int item_key_to_hex(const item_key *k, char out[67]);
uint16_t item_key_sig_type(const item_key *k);
const char *item_key_address(const item_key *k); /* owned by the key */
void item_key_free(item_key *k);

/* Sign: sets sig_type, owner, tag_bytes, sig and id from the key. Any
 * previous signature is replaced. */
int item_sign(item *it, const item_key *k, vn_err *err);

/* ---- primitives (exported for tests, benches and the store) ---- */

void item_sha256(const uint8_t *in, size_t n, uint8_t out[32]);
void item_keccak256(const uint8_t *in, size_t n, uint8_t out[32]);
/* EIP-55 address of an uncompressed 65-byte public key. */
int item_eth_address(const uint8_t pub65[65], char out[ITEM_ADDR_MAX]);
/* Verify a type-3 signature over a 48-byte deep hash by public-key recovery:
 * 0 when it recovers pub65. */
int item_secp256k1_verify(const uint8_t sig65[65], const uint8_t pub65[65], const uint8_t msg48[48]);

#endif
