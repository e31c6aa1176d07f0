/* enc.c - see enc.h. Hand-written because the variants we need (url-safe,
 * unpadded, lenient decode) are not all in OpenSSL's EVP_Encode API. */
#include "common/enc.h"

#include <stdlib.h>
#include <string.h>

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char B64STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static ssize_t enc(const char *alpha, int pad, const uint8_t *in, size_t n, char *out, size_t cap) {
  size_t need = pad ? ((n + 2) / 3) * 4 : B64URL_LEN(n);
  if (cap < need + 1) return -1;
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = alpha[v >> 18 & 63];
    out[o++] = alpha[v >> 12 & 63];
    out[o++] = alpha[v >> 6 & 63];
    out[o++] = alpha[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = alpha[v >> 18 & 63];
    out[o++] = alpha[v >> 12 & 63];
    if (pad) { out[o++] = '='; out[o++] = '='; }
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = alpha[v >> 18 & 63];
    out[o++] = alpha[v >> 12 & 63];
    out[o++] = alpha[v >> 6 & 63];
    if (pad) out[o++] = '=';
  }
  out[o] = 0;
  return (ssize_t)o;
}

ssize_t b64url_encode(const uint8_t *in, size_t n, char *out, size_t outcap) {
  return enc(B64URL, 0, in, n, out, outcap);
}

char *b64url_encode_alloc(const uint8_t *in, size_t n) {
  size_t cap = B64URL_LEN(n) + 1;
  char *s = malloc(cap);
  if (s) enc(B64URL, 0, in, n, s, cap);
  return s;
}

char *b64std_encode_alloc(const uint8_t *in, size_t n) {
  size_t cap = ((n + 2) / 3) * 4 + 1;
  char *s = malloc(cap);
  if (s) enc(B64STD, 1, in, n, s, cap);
  return s;
}

static int val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

/* Lenient decoder: either alphabet, optional trailing '=' padding. */
static ssize_t dec(const char *in, size_t n, uint8_t *out, size_t cap) {
  while (n > 0 && in[n - 1] == '=') n--;
  if (n % 4 == 1) return -1;
  size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
  if (cap < need) return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = val(in[i]);
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  /* Leftover bits must be zero for a canonical encoding. */
  if (bits > 0 && (acc & ((1u << bits) - 1))) return -1;
  return (ssize_t)o;
}

ssize_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap) {
  return dec(in, n, out, outcap);
}

uint8_t *b64_decode_alloc(const char *in, size_t n, size_t *outlen) {
  uint8_t *o = malloc(n / 4 * 3 + 3);
  if (!o) return NULL;
  ssize_t r = dec(in, n, o, n / 4 * 3 + 3);
  if (r < 0) {
    free(o);
    return NULL;
  }
  *outlen = (size_t)r;
  return o;
}

ssize_t hex_encode(const uint8_t *in, size_t n, char *out, size_t outcap) {
  static const char H[] = "0123456789abcdef";
  if (outcap < 2 * n + 1) return -1;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = H[in[i] >> 4];
    out[2 * i + 1] = H[in[i] & 15];
  }
  out[2 * n] = 0;
  return (ssize_t)(2 * n);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

ssize_t hex_decode(const char *in, uint8_t *out, size_t outcap) {
  if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) in += 2;
  size_t n = strlen(in);
  if (n % 2 || outcap < n / 2) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int a = hexval(in[2 * i]), b = hexval(in[2 * i + 1]);
    if (a < 0 || b < 0) return -1;
    out[i] = (uint8_t)(a << 4 | b);
  }
  return (ssize_t)(n / 2);
}
