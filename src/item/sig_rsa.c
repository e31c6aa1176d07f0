/* sig_rsa.c - type 1 (Arweave) signatures: RSA-PSS, SHA-256, MGF1-SHA-256,
 * e = 65537, 4096-bit modulus carried as the item owner.
 *
 * Verification auto-detects the salt length, as arbundles does. Signing uses
 * the maximum salt length (modulus bytes - 32 - 2 = 478 for 4096 bits), which
 * is what arbundles gets from Node's crypto and what the vectors carry. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "item/internal.h"

/* Build an EVP_PKEY from big-endian parameters; names[i] = OSSL param name. */
static EVP_PKEY *pkey_from(const char *const *names, const uint8_t *const *vals, const size_t *lens,
                           int count, int selection) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *pc = NULL;
  BIGNUM *bn[8] = {0};
  if (!bld || count > 8) goto done;
  for (int i = 0; i < count; i++) {
    bn[i] = BN_bin2bn(vals[i], (int)lens[i], NULL);
    if (!bn[i] || !OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i])) goto done;
  }
  params = OSSL_PARAM_BLD_to_param(bld);
  pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  if (!params || !pc || EVP_PKEY_fromdata_init(pc) <= 0) goto done;
  if (EVP_PKEY_fromdata(pc, &pkey, selection, params) <= 0) pkey = NULL;
done:
  for (int i = 0; i < 8; i++) BN_clear_free(bn[i]);
  EVP_PKEY_CTX_free(pc);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return pkey;
}

static int set_pss(EVP_PKEY_CTX *pc, int saltlen) {
  return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pc, item__md_sha256()) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, saltlen) > 0;
}

static const uint8_t E65537[3] = {0x01, 0x00, 0x01};

int item__rsa_verify(const uint8_t *n, size_t n_len, const uint8_t *sig, size_t sig_len,
                     const uint8_t msg48[48]) {
  /* A zero top byte would make a shorter modulus than the 4096 bits the type
   * promises; OpenSSL also refuses a signature numerically >= n. */
  if (n_len != 512 || sig_len != 512 || n[0] == 0) return -1;
  const char *names[2] = {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E};
  const uint8_t *vals[2] = {n, E65537};
  size_t lens[2] = {n_len, sizeof E65537};
  EVP_PKEY *pkey = pkey_from(names, vals, lens, 2, EVP_PKEY_PUBLIC_KEY);
  if (!pkey) return -1;
  int ok = 0;
  EVP_MD_CTX *mc = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  if (mc && EVP_DigestVerifyInit(mc, &pc, item__md_sha256(), NULL, pkey) > 0 &&
      set_pss(pc, RSA_PSS_SALTLEN_AUTO))
    ok = EVP_DigestVerify(mc, sig, sig_len, msg48, 48) == 1;
  EVP_MD_CTX_free(mc);
  EVP_PKEY_free(pkey);
  return ok ? 0 : -1;
}

int item__rsa_sign(EVP_PKEY *pkey, const uint8_t msg48[48], uint8_t *sig, size_t *sig_len,
                   vn_err *err) {
  int ok = 0;
  EVP_MD_CTX *mc = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  if (mc && EVP_DigestSignInit(mc, &pc, item__md_sha256(), NULL, pkey) > 0 &&
      set_pss(pc, RSA_PSS_SALTLEN_MAX))
    ok = EVP_DigestSign(mc, sig, sig_len, msg48, 48) == 1;
  EVP_MD_CTX_free(mc);
  return ok ? 0 : vn_errf(err, "crypto_error", "RSA-PSS signing failed");
}

/* One base64url JWK member, decoded; leading zero bytes are dropped (JWK
 * integers are minimal, but be tolerant of writers that pad). */
static uint8_t *jwk_int(const json_t *jwk, const char *name, size_t *len, vn_err *err) {
  const char *s = json_string_value(json_object_get(jwk, name));
  if (!s || !*s) {
    vn_errf(err, "bad_key", "JWK has no \"%s\"", name);
    return NULL;
  }
  size_t n = 0;
  uint8_t *b = b64_decode_alloc(s, strlen(s), &n);
  if (!b) {
    vn_errf(err, "bad_key", "JWK \"%s\" is not base64url", name);
    return NULL;
  }
  size_t z = 0;
  while (z < n && b[z] == 0) z++;
  memmove(b, b + z, n - z);
  *len = n - z;
  return b;
}

EVP_PKEY *item__rsa_from_jwk(const json_t *jwk, uint8_t **n_out, size_t *n_len, vn_err *err) {
  static const char *const jwk_names[8] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
  static const char *const ossl_names[8] = {
      OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,           OSSL_PKEY_PARAM_RSA_D,
      OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,     OSSL_PKEY_PARAM_RSA_EXPONENT1,
      OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
  uint8_t *vals[8] = {0};
  size_t lens[8] = {0};
  EVP_PKEY *pkey = NULL;
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  if (!json_is_object(jwk)) {
    vn_errf(err, "bad_key", "JWK is not a JSON object");
    goto done;
  }
  if (kty && strcmp(kty, "RSA") != 0) {
    vn_errf(err, "bad_key", "JWK kty is \"%s\", expected \"RSA\"", kty);
    goto done;
  }
  for (int i = 0; i < 8; i++)
    if (!(vals[i] = jwk_int(jwk, jwk_names[i], &lens[i], err))) goto done;
  if (lens[0] != 512) {
    vn_errf(err, "bad_key", "JWK modulus is %zu bytes; Arweave keys are 4096-bit (512 bytes)",
            lens[0]);
    goto done;
  }
  if (lens[1] != 3 || memcmp(vals[1], E65537, 3) != 0) {
    vn_errf(err, "bad_key", "JWK public exponent must be 65537 (\"AQAB\")");
    goto done;
  }
  pkey = pkey_from(ossl_names, (const uint8_t *const *)vals, lens, 8, EVP_PKEY_KEYPAIR);
  if (!pkey) {
    vn_errf(err, "bad_key", "OpenSSL refused the RSA key parameters");
    goto done;
  }
  /* A JWK whose private half does not match n would sign garbage silently;
   * check once at load time. */
  EVP_PKEY_CTX *cc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  int good = cc && EVP_PKEY_pairwise_check(cc) == 1;
  EVP_PKEY_CTX_free(cc);
  if (!good) {
    EVP_PKEY_free(pkey);
    pkey = NULL;
    vn_errf(err, "bad_key", "JWK private parameters do not match the modulus");
    goto done;
  }
  *n_out = vals[0];
  *n_len = lens[0];
  vals[0] = NULL;
done:
  for (int i = 0; i < 8; i++) {
    if (vals[i]) OPENSSL_cleanse(vals[i], lens[i]);
    free(vals[i]);
  }
  return pkey;
}
