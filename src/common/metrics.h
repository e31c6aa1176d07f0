/* metrics.h - process-wide counters and latency histograms, rendered in the
 * Prometheus text format by GET /metrics. `vn_metrics` is one of the few
 * documented globals: everything in it is atomic, so any thread may bump it. */
#ifndef VN_METRICS_H
#define VN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_HIST_BUCKETS 14

typedef struct metrics_hist {
  _Atomic uint64_t counts[METRICS_HIST_BUCKETS + 1]; /* last = +Inf */
  _Atomic uint64_t sum_ns;
  _Atomic uint64_t count;
} metrics_hist;

/* Routes counted separately in vmnode_http_requests_total{route=…}. */
enum {
  MR_SUBMIT, MR_RESULT, MR_RESULTS, MR_DRYRUN, MR_ITEM, MR_ASSIGNMENT, MR_NONCE, MR_INFO,
  MR_NODES, MR_MODULES, MR_CACHE, MR_METRICS, MR_TIMESTAMP, MR_PROCESSES, MR_GRAPHQL,
  MR_OTHER, MR_COUNT
};
extern const char *const metrics_route_names[MR_COUNT];

typedef struct vn_metrics_t {
  _Atomic uint64_t http_requests[MR_COUNT][6]; /* [route][status/100] */
  metrics_hist http_latency[MR_COUNT];
  _Atomic uint64_t items_received;   /* items accepted on POST / */
  _Atomic uint64_t items_rejected;   /* refused: bad item, signature, duplicate… */
  _Atomic uint64_t assignments;      /* nonces assigned */
  _Atomic uint64_t spawns;
  _Atomic uint64_t results;          /* results stored */
  _Atomic uint64_t result_errors;    /* results with Error set */
  _Atomic uint64_t vm_failures;      /* VM backend failures */
  _Atomic uint64_t outbox_delivered; /* items emitted by processes and delivered */
  _Atomic uint64_t outbox_dropped;   /* emitted items that could not be delivered */
  _Atomic uint64_t commit_batches;   /* durable group commits */
  metrics_hist commit_latency;       /* one durable commit */
  metrics_hist assign_latency;       /* submit → acknowledged */
  metrics_hist apply_latency;        /* one VM apply */
  _Atomic int64_t processes;         /* gauge */
  _Atomic int64_t queue_depth;       /* gauge: assigned, not yet applied */
  _Atomic int64_t vms_running;       /* gauge: VM instances up (Lua workers, echo) */
  _Atomic uint64_t vms_evicted;      /* VMs closed after vmIdleMs unused */
} vn_metrics_t;

extern vn_metrics_t vn_metrics;

void metrics_observe(metrics_hist *h, uint64_t ns);
/* Monotonic clock in ns (for latency measurement). */
uint64_t metrics_now_ns(void);
/* Write the whole exposition text. */
void metrics_render(FILE *f);

#endif
