/* sig_ed25519.c - types 2 (ed25519) and 4 (Solana): plain ed25519 over the
 * 48-byte deep hash, owner = the 32-byte public key. Verify only; vmnode never
 * signs with these types. */
#include <openssl/evp.h>

#include "item/internal.h"

int item__ed25519_verify(const uint8_t pub[32], const uint8_t sig[64], const uint8_t *msg,
                         size_t n) {
  EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
  if (!pk) return -1;
  int ok = 0;
  EVP_MD_CTX *mc = EVP_MD_CTX_new();
  /* ed25519 is a one-shot scheme: no digest is given to DigestVerifyInit. */
  if (mc && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pk) > 0)
    ok = EVP_DigestVerify(mc, sig, 64, msg, n) == 1;
  EVP_MD_CTX_free(mc);
  EVP_PKEY_free(pk);
  return ok ? 0 : -1;
}
