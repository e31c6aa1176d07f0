/* store_bench.c - micro-benchmark of the store's hot paths on a temp file.
 *
 * Durable (synchronous=FULL) transactions of K assignments, K = 1, 10, 100:
 * assignments per second and the latency of store_commit (the fsync).
 * For scale it also measures K = 1 with synchronous=NORMAL, the full
 * acknowledge path (item + assignment + process advance in one durable
 * transaction), and the hot reads. Output is one `name value` per line.
 *
 * Usage: store_bench [seconds per case, default 2] [dir, default /tmp] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what, const vn_err *e) {
  fprintf(stderr, "store_bench: %s: %s: %s\n", what, e->code ? e->code : "?", e->msg);
  exit(1);
}

static void rm_db(const char *path) {
  char p[640];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

/* A signed Assignment item is ~1.1 KB with a 4096-bit RSA key. */
static uint8_t raw[1100];

static void fake_id(char out[44], const char *prefix, int64_t n) {
  snprintf(out, 44, "%s%038lld", prefix, (long long)n);
}

typedef struct result {
  double per_s;
  double p50_ms, p99_ms, max_ms;
} result;

/* Transactions of k assignments for `secs` seconds. full: also an item and a
 * process advance per assignment, as the node's acknowledge path does. */
static result run_batches(const char *path, int durable, int k, double secs, int full) {
  rm_db(path);
  vn_err e = {0};
  store *s = store_open(path, durable, &e);
  if (!s) die("open", &e);
  const char *pid = "PROCESS000000000000000000000000000000000000";
  store_process p = {.pid = (char *)pid, .module = "M", .owner = "O", .status = "running"};
  if (store_process_put(s, &p, &e)) die("process_put", &e);

  size_t cap = 1 << 16, nlat = 0;
  double *lat = malloc(cap * sizeof *lat);
  int64_t nonce = 0;
  uint8_t hc[32] = {0};
  double t0 = now_s(), t1 = t0;
  while (t1 - t0 < secs) {
    if (store_begin(s, &e)) die("begin", &e);
    for (int i = 0; i < k; i++, nonce++) {
      char mid[44], aid[44];
      fake_id(mid, "msg", nonce);
      fake_id(aid, "asg", nonce);
      if (full) {
        store_item_meta m = {
            .id = mid, .type = "Message", .owner = "O", .target = pid, .received_ms = nonce};
        if (store_item_put(s, &m, raw, sizeof raw, &e) < 0) die("item_put", &e);
      }
      store_assignment a = {.pid = (char *)pid,
                            .nonce = nonce,
                            .message_id = mid,
                            .assignment_id = aid,
                            .timestamp_ms = nonce,
                            .raw = raw,
                            .raw_len = sizeof raw};
      if (store_assignment_put(s, &a, &e)) die("assignment_put", &e);
      if (full) {
        hc[0] = (uint8_t)nonce;
        if (store_process_advance(s, pid, nonce, hc, &e)) die("process_advance", &e);
      }
    }
    double c0 = now_s();
    if (store_commit(s, &e)) die("commit", &e);
    t1 = now_s();
    if (nlat == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
    lat[nlat++] = (t1 - c0) * 1e3;
  }
  qsort(lat, nlat, sizeof *lat, cmp_double);
  result r = {.per_s = (double)nonce / (t1 - t0),
              .p50_ms = lat[nlat / 2],
              .p99_ms = lat[(size_t)((double)nlat * 0.99)],
              .max_ms = lat[nlat - 1]};
  free(lat);
  if (store_integrity_check(s, &e)) die("integrity", &e);
  store_close(s);
  return r;
}

/* Hot reads on the file left by the previous case (nonce-ordered log). */
static void run_reads(const char *path, double secs) {
  vn_err e = {0};
  store *s = store_open(path, 0, &e);
  if (!s) die("open", &e);
  const char *pid = "PROCESS000000000000000000000000000000000000";
  enum { N = 20000 };
  if (store_begin(s, &e)) die("begin", &e);
  double t0 = now_s();
  for (int64_t n = 0; n < N; n++) {
    char mid[44];
    fake_id(mid, "msg", n);
    if (store_result_put(s, pid, n, mid, n, "{\"Output\":\"hello\",\"Messages\":[]}", &e))
      die("result_put", &e);
  }
  if (store_commit(s, &e)) die("commit", &e);
  printf("store.result_put_per_s.batch%d %.0f\n", N, N / (now_s() - t0));

  int64_t n = 0;
  t0 = now_s();
  double t1 = t0;
  for (; t1 - t0 < secs / 2; n++) {
    char mid[44], *json = NULL;
    fake_id(mid, "msg", (n * 7919) % N);
    if (store_result_get(s, mid, &json, &e) != 1) die("result_get", &e);
    free(json);
    if ((n & 1023) == 0) t1 = now_s();
  }
  printf("store.result_get_per_s %.0f\n", (double)n / (now_s() - t0));

  n = 0;
  t0 = t1 = now_s();
  for (; t1 - t0 < secs / 2; n++) {
    char mid[44];
    fake_id(mid, "msg", (n * 7919) % (2 * N)); /* half hits, half misses */
    if (store_message_assigned(s, mid, &e) < 0) die("message_assigned", &e);
    if ((n & 1023) == 0) t1 = now_s();
  }
  printf("store.message_assigned_per_s %.0f\n", (double)n / (now_s() - t0));
  store_close(s);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  const char *base = argc > 2 ? argv[2] : "/tmp";
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/vn_store_bench_XXXXXX", base);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(path, sizeof path, "%s/bench.db", dir);
  memset(raw, 0x5a, sizeof raw);

  const int ks[] = {1, 10, 100};
  for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
    result r = run_batches(path, 1, ks[i], secs, 0);
    printf("store.assign_per_s.batch%d %.0f\n", ks[i], r.per_s);
    printf("store.commit_ms_p50.batch%d %.3f\n", ks[i], r.p50_ms);
    printf("store.commit_ms_p99.batch%d %.3f\n", ks[i], r.p99_ms);
    printf("store.commit_ms_max.batch%d %.3f\n", ks[i], r.max_ms);
    fflush(stdout);
  }
  result r = run_batches(path, 0, 1, secs, 0);
  printf("store.assign_per_s.batch1_nosync %.0f\n", r.per_s);
  printf("store.commit_ms_p50.batch1_nosync %.3f\n", r.p50_ms);
  r = run_batches(path, 1, 1, secs, 1);
  printf("store.ack_per_s.batch1 %.0f\n", r.per_s);
  r = run_batches(path, 1, 10, secs, 1);
  printf("store.ack_per_s.batch10 %.0f\n", r.per_s);
  run_reads(path, secs);

  rm_db(path);
  rmdir(dir);
  return 0;
}
