/* loadgen.c - signed-message load generator for vmnode (bench and tests).
 *
 * Signs N type-3 Message items up front (so client-side signing is not in
 * the timed part), then posts them over HTTP from C threads with keep-alive
 * connections, round-robin over the target processes, and reports
 * throughput and latency percentiles. Every acknowledged (200) id is written
 * to --acked as soon as the answer arrives, so a test that kills the node
 * knows exactly which messages the node promised to keep.
 *
 * usage: loadgen --node URL --pids FILE|--pid PID --count N [--concurrency C]
 *                [--prvkey HEX] [--acked FILE] [--data-size B] [--quiet]
 * output (one "key value" per line): sent, ok, failed, seconds, msgs_per_s,
 * p50_ms, p99_ms, max_ms. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "item/item.h"

typedef struct msg {
  uint8_t *raw;
  size_t len;
  char id[ITEM_ID_LEN + 1];
  char pid[ITEM_ID_LEN + 1];
  double ms;
  int status;
} msg;

static msg *g_msgs;
static int g_count;
static _Atomic int g_next;
static const char *g_url;
static FILE *g_acked;
static pthread_mutex_t g_acked_mu = PTHREAD_MUTEX_INITIALIZER;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t sink(char *p, size_t s, size_t n, void *u) {
  (void)p;
  (void)u;
  return s * n;
}

static void *worker(void *arg) {
  (void)arg;
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, g_url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  for (;;) {
    int i = atomic_fetch_add(&g_next, 1);
    if (i >= g_count) break;
    msg *m = &g_msgs[i];
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->raw);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)m->len);
    double t0 = now_ms();
    CURLcode rc = curl_easy_perform(c);
    m->ms = now_ms() - t0;
    long st = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    m->status = (int)st;
    if (st == 200 && g_acked) {
      pthread_mutex_lock(&g_acked_mu);
      fprintf(g_acked, "%s %s\n", m->id, m->pid);
      fflush(g_acked);
      pthread_mutex_unlock(&g_acked_mu);
    }
    if (rc != CURLE_OK) usleep(1000); /* node down: do not spin */
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return NULL;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *node = "http://127.0.0.1:8080", *pidfile = NULL, *pid1 = NULL, *acked = NULL;
  const char *hex = NULL;
  int conc = 16, quiet = 0;
  size_t dsize = 32;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--node") && v) node = v, i++;
    else if (!strcmp(a, "--pids") && v) pidfile = v, i++;
    else if (!strcmp(a, "--pid") && v) pid1 = v, i++;
    else if (!strcmp(a, "--count") && v) g_count = atoi(v), i++;
    else if (!strcmp(a, "--concurrency") && v) conc = atoi(v), i++;
    else if (!strcmp(a, "--acked") && v) acked = v, i++;
    else if (!strcmp(a, "--prvkey") && v) hex = v, i++;
    else if (!strcmp(a, "--data-size") && v) dsize = (size_t)atol(v), i++;
    else if (!strcmp(a, "--quiet")) quiet = 1;
    else {
      fprintf(stderr, "loadgen: unknown argument %s\n", a);
      return 2;
    }
  }
  char **pids = NULL;
  int npids = 0;
  if (pid1) {
    pids = malloc(sizeof *pids);
    pids[npids++] = strdup(pid1);
  } else if (pidfile) {
    FILE *f = fopen(pidfile, "r");
    char line[128];
    while (f && fgets(line, sizeof line, f)) {
      line[strcspn(line, "\r\n ")] = 0;
      if (!*line) continue;
      pids = realloc(pids, sizeof *pids * (size_t)(npids + 1));
      pids[npids++] = strdup(line);
    }
    if (f) fclose(f);
  }
  if (!npids || g_count <= 0 || conc <= 0) {
    fprintf(stderr, "loadgen: need --pid or --pids, --count > 0\n");
    return 2;
  }
  vn_err err;
  vn_err_clear(&err);
  item_key *k = hex ? item_key_from_hex(hex, &err) : item_key_generate(&err);
  if (!k) {
    fprintf(stderr, "loadgen: %s\n", err.msg);
    return 1;
  }
  g_msgs = calloc((size_t)g_count, sizeof *g_msgs);
  uint8_t *data = malloc(dsize + 1);
  for (int i = 0; i < g_count; i++) {
    item *it = item_new();
    const char *pid = pids[i % npids];
    char nb[32];
    snprintf(nb, sizeof nb, "%d", i);
    for (size_t b = 0; b < dsize; b++) data[b] = (uint8_t)('a' + (i + (int)b) % 26);
    if (item_set_target_b64(it, pid, &err) || item_add_tag(it, "Data-Protocol", "ao", &err) ||
        item_add_tag(it, "Variant", "ao.TN.1", &err) || item_add_tag(it, "Type", "Message", &err) ||
        item_add_tag(it, "Action", "Ping", &err) || item_add_tag(it, "Load-Index", nb, &err) ||
        item_set_data(it, data, dsize) || item_sign(it, k, &err)) {
      fprintf(stderr, "loadgen: signing: %s\n", err.msg);
      return 1;
    }
    g_msgs[i].raw = item_encode(it, &g_msgs[i].len, &err);
    snprintf(g_msgs[i].id, sizeof g_msgs[i].id, "%s", it->id);
    snprintf(g_msgs[i].pid, sizeof g_msgs[i].pid, "%s", pid);
    item_free(it);
  }
  free(data);
  if (acked) g_acked = fopen(acked, "a");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char url[1024];
  snprintf(url, sizeof url, "%s/", node);
  g_url = url;
  pthread_t *th = calloc((size_t)conc, sizeof *th);
  double t0 = now_ms();
  for (int i = 0; i < conc; i++) pthread_create(&th[i], NULL, worker, NULL);
  for (int i = 0; i < conc; i++) pthread_join(th[i], NULL);
  double secs = (now_ms() - t0) / 1e3;
  double *lat = malloc(sizeof *lat * (size_t)g_count);
  int ok = 0;
  for (int i = 0; i < g_count; i++)
    if (g_msgs[i].status == 200) lat[ok++] = g_msgs[i].ms;
  qsort(lat, (size_t)ok, sizeof *lat, cmpd);
  double p50 = ok ? lat[ok / 2] : 0, p99 = ok ? lat[(int)(ok * 0.99) < ok ? (int)(ok * 0.99) : ok - 1] : 0;
  printf("sent %d\nok %d\nfailed %d\nseconds %.3f\nmsgs_per_s %.1f\np50_ms %.3f\np99_ms %.3f\nmax_ms %.3f\n",
         g_count, ok, g_count - ok, secs, ok / secs, p50, p99, ok ? lat[ok - 1] : 0);
  if (!quiet && ok < g_count) {
    int shown = 0;
    for (int i = 0; i < g_count && shown < 3; i++)
      if (g_msgs[i].status != 200) {
        fprintf(stderr, "loadgen: message %d answered %d\n", i, g_msgs[i].status);
        shown++;
      }
  }
  if (g_acked) fclose(g_acked);
  item_key_free(k);
  for (int i = 0; i < g_count; i++) free(g_msgs[i].raw);
  free(g_msgs);
  free(lat);
  free(th);
  for (int i = 0; i < npids; i++) free(pids[i]);
  free(pids);
  curl_global_cleanup();
  return 0;
}
