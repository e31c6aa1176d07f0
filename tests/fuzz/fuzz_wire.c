/* fuzz_wire.c - libFuzzer target for the sandbox wire format (src/sandbox/
 * wire.c): the node decodes what workers and the zygote send it, and a
 * worker is untrusted (it runs user code), so every decoder must reject
 * garbage cleanly. The first byte picks the decoder; a decoded call or
 * result is encoded again and must decode to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const uint8_t *body = data + 1;
  size_t len = size - 1;
  switch (data[0] % 5) {
    case 0: {
      sbx_call c;
      if (sbx_decode_call(body, len, &c) == 0) {
        sbx_buf b = {0};
        sbx_encode_call(&b, &c);
        sbx_call c2;
        if (sbx_decode_call(b.p, b.len, &c2) != 0 || c2.payload_len != c.payload_len ||
            c2.gas_limit != c.gas_limit)
          abort();
        sbx_buf_free(&b);
      }
      break;
    }
    case 1: {
      sbx_result r;
      if (sbx_decode_result(body, len, &r) == 0) {
        sbx_buf b = {0};
        sbx_encode_result(&b, &r);
        sbx_result r2;
        if (sbx_decode_result(b.p, b.len, &r2) != 0 || r2.output_len != r.output_len ||
            r2.gas_used != r.gas_used)
          abort();
        sbx_result_free(&r2);
        sbx_buf_free(&b);
        sbx_result_free(&r);
      }
      break;
    }
    case 2: {
      sbx_image_info i;
      (void)sbx_decode_info(body, len, &i);
      break;
    }
    case 3: {
      vn_err e;
      vn_err_clear(&e);
      (void)sbx_err_from_body(body, len, &e);
      break;
    }
    case 4: {
      sbx_zygote_cfg z;
      memset(&z, 0, sizeof z);
      if (sbx_decode_zcfg(body, len, &z) == 0) sbx_zcfg_free(&z);
      break;
    }
  }
  return 0;
}
