/* crypto_bound.c - how much of a node's per-message budget is cryptography.
 *
 * Every message a node accepts costs at least one secp256k1 public-key
 * recovery (verify) and, for what it emits (assignment, outbox messages,
 * checkpoints), one secp256k1 signature. This prints the per-operation cost
 * so throughput numbers elsewhere can be read against the crypto floor.
 *
 * Output: one "key value" line per measurement, machine-readable:
 *   crypto.recover_us 52.1      crypto.recover_ops 19193
 *   ...                         crypto.cores 8
 * Build: cc -O2 -Isrc bench/crypto_bound.c build/libvmnode.a \
 *          $(pkg-config --libs libssl libcrypto libsecp256k1 jansson) -lpthread
 * Usage: crypto_bound [iterations]   (default 2000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "item/item.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void report(const char *name, double total_us, int n) {
  double per = total_us / n;
  printf("crypto.%s_us %.1f\n", name, per);
  printf("crypto.%s_ops %.0f\n", name, per > 0 ? 1e6 / per : 0);
}

/* A small AO-style message: target, 4 tags, a few bytes of data. */
static item *small_item(const item_key *k) {
  vn_err err = {0};
  item *it = item_new();
  uint8_t target[32];
  memset(target, 7, sizeof target);
  item_set_target(it, target);
  item_add_tag(it, "Data-Protocol", "ao", &err);
  item_add_tag(it, "Variant", "ao.TN.1", &err);
  item_add_tag(it, "Type", "Message", &err);
  item_add_tag(it, "Action", "Transfer", &err);
  item_set_data(it, (const uint8_t *)"{\"Quantity\":\"100\"}", 18);
  if (item_sign(it, k, &err) < 0) {
    fprintf(stderr, "sign: %s\n", err.msg);
    exit(1);
  }
  return it;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  if (n <= 0) n = 2000;
  vn_err err = {0};
  item_key *k = item_key_generate(&err);
  if (!k) {
    fprintf(stderr, "keygen: %s\n", err.msg);
    return 1;
  }
  item *it = small_item(k);
  uint8_t msg[48];
  item_deep_hash(it, msg, &err);
  volatile int sink = 0;

  /* Warm up: the secp256k1 context and OpenSSL fetches are made once. */
  for (int i = 0; i < 50; i++) sink += item_secp256k1_verify(it->sig, it->owner, msg);

  double t = now_us();
  for (int i = 0; i < n; i++) sink += item_secp256k1_verify(it->sig, it->owner, msg);
  report("recover", now_us() - t, n);

  t = now_us();
  for (int i = 0; i < n; i++) sink += item_sign(it, k, &err);
  report("sign", now_us() - t, n);

  t = now_us();
  for (int i = 0; i < n; i++) sink += item_deep_hash(it, msg, &err);
  report("deephash", now_us() - t, n);

  t = now_us();
  for (int i = 0; i < n; i++) sink += item_verify(it, &err);
  report("verify_item", now_us() - t, n);

  /* What one accepted message costs at minimum: verify the incoming item,
   * sign the node's answer (here: the same item again). */
  t = now_us();
  for (int i = 0; i < n; i++) {
    sink += item_verify(it, &err);
    sink += item_sign(it, k, &err);
  }
  report("recover_sign", now_us() - t, n);

  item_free(it);
  item_key_free(k);
  printf("crypto.cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
  printf("crypto.iterations %d\n", n);
  if (sink != 0) fprintf(stderr, "warning: %d operations failed\n", sink);
  return sink != 0;
}
