/* enc.h - base64url (no padding), standard base64, hex.
 *
 * Encoders write a NUL-terminated string into a caller buffer and return its
 * length, or -1 when the buffer is too small. Decoders return the number of
 * bytes written or -1 on malformed input or a short buffer. The *_alloc forms
 * return malloc'd memory the caller frees. */
#ifndef VN_ENC_H
#define VN_ENC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define B64URL_LEN(n) (((n) * 4 + 2) / 3) /* chars without padding, no NUL */

ssize_t b64url_encode(const uint8_t *in, size_t n, char *out, size_t outcap);
ssize_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap);
char *b64url_encode_alloc(const uint8_t *in, size_t n);
/* Accepts base64url or standard base64, with or without padding. */
uint8_t *b64_decode_alloc(const char *in, size_t n, size_t *outlen);
/* Standard alphabet with '=' padding. */
char *b64std_encode_alloc(const uint8_t *in, size_t n);

ssize_t hex_encode(const uint8_t *in, size_t n, char *out, size_t outcap);
/* Accepts an optional 0x prefix, either case. */
ssize_t hex_decode(const char *in, uint8_t *out, size_t outcap);

#endif
