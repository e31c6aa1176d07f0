/* metrics.c - see metrics.h. */
#include "common/metrics.h"

#include <time.h>

vn_metrics_t vn_metrics;

const char *const metrics_route_names[MR_COUNT] = {
    "submit", "result", "results", "dryrun", "item", "assignment", "nonce", "info",
    "nodes", "modules", "cache", "metrics", "timestamp", "processes", "graphql", "other"};

/* Bucket upper bounds in seconds. */
static const double BOUNDS[METRICS_HIST_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                    1,      5};

uint64_t metrics_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void metrics_observe(metrics_hist *h, uint64_t ns) {
  double s = (double)ns / 1e9;
  int i = 0;
  while (i < METRICS_HIST_BUCKETS && s > BOUNDS[i]) i++;
  atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static void hist(FILE *f, const char *name, const char *labels, const metrics_hist *h) {
  uint64_t cum = 0;
  const char *sep = labels[0] ? "," : "";
  for (int i = 0; i < METRICS_HIST_BUCKETS; i++) {
    cum += atomic_load(&h->counts[i]);
    fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, BOUNDS[i],
            (unsigned long long)cum);
  }
  cum += atomic_load(&h->counts[METRICS_HIST_BUCKETS]);
  fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
  const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
  fprintf(f, "%s_sum%s%s%s %.9f\n", name, open, labels, close, (double)atomic_load(&h->sum_ns) / 1e9);
  fprintf(f, "%s_count%s%s%s %llu\n", name, open, labels, close,
          (unsigned long long)atomic_load(&h->count));
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v) {
  fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
          (unsigned long long)v);
}

void metrics_render(FILE *f) {
  vn_metrics_t *m = &vn_metrics;
  fprintf(f, "# HELP vmnode_http_requests_total HTTP requests by route and status class.\n"
             "# TYPE vmnode_http_requests_total counter\n");
  for (int r = 0; r < MR_COUNT; r++)
    for (int c = 1; c < 6; c++) {
      uint64_t v = atomic_load(&m->http_requests[r][c]);
      if (v)
        fprintf(f, "vmnode_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                metrics_route_names[r], c, (unsigned long long)v);
    }
  fprintf(f, "# HELP vmnode_http_request_seconds HTTP request latency by route.\n"
             "# TYPE vmnode_http_request_seconds histogram\n");
  for (int r = 0; r < MR_COUNT; r++) {
    if (!atomic_load(&m->http_latency[r].count)) continue;
    char l[64];
    snprintf(l, sizeof l, "route=\"%s\"", metrics_route_names[r]);
    hist(f, "vmnode_http_request_seconds", l, &m->http_latency[r]);
  }
  counter(f, "vmnode_items_received_total", "Items accepted on POST /.", m->items_received);
  counter(f, "vmnode_items_rejected_total", "Items refused (malformed, bad signature, duplicate...).",
          m->items_rejected);
  counter(f, "vmnode_assignments_total", "Nonces assigned (durably).", m->assignments);
  counter(f, "vmnode_spawns_total", "Processes spawned.", m->spawns);
  counter(f, "vmnode_results_total", "Results stored.", m->results);
  counter(f, "vmnode_result_errors_total", "Results with Error set.", m->result_errors);
  counter(f, "vmnode_vm_failures_total", "VM backend failures.", m->vm_failures);
  counter(f, "vmnode_outbox_delivered_total", "Items emitted by processes and delivered.",
          m->outbox_delivered);
  counter(f, "vmnode_outbox_dropped_total", "Items emitted by processes that could not be delivered.",
          m->outbox_dropped);
  counter(f, "vmnode_commit_batches_total", "Durable group commits of assignments.",
          m->commit_batches);
  fprintf(f, "# HELP vmnode_commit_seconds Duration of one durable group commit.\n"
             "# TYPE vmnode_commit_seconds histogram\n");
  hist(f, "vmnode_commit_seconds", "", &m->commit_latency);
  fprintf(f, "# HELP vmnode_assign_seconds From submit to acknowledged (durable).\n"
             "# TYPE vmnode_assign_seconds histogram\n");
  hist(f, "vmnode_assign_seconds", "", &m->assign_latency);
  fprintf(f, "# HELP vmnode_apply_seconds One VM apply.\n# TYPE vmnode_apply_seconds histogram\n");
  hist(f, "vmnode_apply_seconds", "", &m->apply_latency);
  fprintf(f, "# HELP vmnode_processes Processes hosted.\n# TYPE vmnode_processes gauge\n"
             "vmnode_processes %lld\n",
          (long long)atomic_load(&m->processes));
  fprintf(f, "# HELP vmnode_queue_depth Messages assigned but not yet applied.\n"
             "# TYPE vmnode_queue_depth gauge\nvmnode_queue_depth %lld\n",
          (long long)atomic_load(&m->queue_depth));
  fprintf(f, "# HELP vmnode_vms_running VM instances up (a Lua one is a worker process).\n"
             "# TYPE vmnode_vms_running gauge\nvmnode_vms_running %lld\n",
          (long long)atomic_load(&m->vms_running));
  counter(f, "vmnode_vms_evicted_total", "VMs closed after vmIdleMs unused.", m->vms_evicted);
}
