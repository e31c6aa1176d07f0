/* loadgen.c - signed-message load generator for vmnode (bench and tests).
 *
 * Signs N type-3 Message items up front (so client-side signing is not in
 * the timed part), then posts them over HTTP/1.1 keep-alive connections
 * from one epoll loop, round-robin over the target processes, and reports
 * throughput and latency percentiles. The client is deliberately lean (raw
 * sockets, requests pre-formatted): it shares the machine's cores with the
 * node it measures, so every microsecond it spends is taken from the node.
 * Every acknowledged (200) id is written to --acked as soon as the answer
 * arrives, so a test that kills the node knows exactly which messages the
 * node promised to keep.
 *
 * usage: loadgen --node http://HOST:PORT --pids FILE|--pid PID --count N
 *                [--concurrency C] [--prvkey HEX] [--acked FILE]
 *                [--data-size B] [--quiet]
 * output (one "key value" per line): sent, ok, failed, seconds, msgs_per_s,
 * p50_ms, p99_ms, max_ms. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "item/item.h"

typedef struct msg {
  char *req; /* the whole HTTP request */
  size_t len;
  char id[ITEM_ID_LEN + 1];
  char pid[ITEM_ID_LEN + 1];
  double ms;
  int status;
} msg;

typedef struct conn {
  int fd;
  int cur;       /* message index in flight, -1 = idle */
  size_t sent;   /* bytes of the request written */
  char buf[8192];
  size_t got;    /* bytes of the response read */
  double t0;
} conn;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;

static int dial(void) {
  int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&g_addr, g_addrlen) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A complete response in c->buf? Returns its total length, 0 if not yet,
 * -1 if malformed. Sets *status. */
static ssize_t response_len(conn *c, int *status) {
  c->buf[c->got < sizeof c->buf ? c->got : sizeof c->buf - 1] = 0;
  char *end = strstr(c->buf, "\r\n\r\n");
  if (!end) return c->got >= sizeof c->buf - 1 ? -1 : 0;
  if (sscanf(c->buf, "HTTP/1.%*d %d", status) != 1) return -1;
  size_t hdr = (size_t)(end - c->buf) + 4;
  long cl = 0;
  for (char *p = c->buf; p < end; p++) {
    if ((*p == 'C' || *p == 'c') && strncasecmp(p, "content-length:", 15) == 0) {
      cl = strtol(p + 15, NULL, 10);
      break;
    }
  }
  if (cl < 0 || hdr + (size_t)cl >= sizeof c->buf) return -1;
  return c->got >= hdr + (size_t)cl ? (ssize_t)(hdr + (size_t)cl) : 0;
}

static int g_ep, g_next, g_done, g_count;
static msg *g_msgs;

/* Give an idle connection its next message, dialling when needed. While
 * the node is down every message tried counts as failed (1 ms apart), so a
 * run against a killed node ends quickly. */
static void start(conn *c) {
  while (c->cur < 0 && g_next < g_count) {
    c->cur = g_next++;
    if (c->fd < 0) {
      c->fd = dial();
      if (c->fd < 0) {
        g_msgs[c->cur].status = -1;
        g_done++;
        c->cur = -1;
        usleep(1000);
        continue;
      }
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
      epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev);
    } else {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
      epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->sent = 0;
    c->got = 0;
    c->t0 = now_ms();
  }
}

int main(int argc, char **argv) {
  const char *node = "http://127.0.0.1:8080", *pidfile = NULL, *pid1 = NULL, *acked = NULL;
  const char *hex = NULL;
  int count = 0, conc = 16, quiet = 0;
  size_t dsize = 32;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--node") && v) node = v, i++;
    else if (!strcmp(a, "--pids") && v) pidfile = v, i++;
    else if (!strcmp(a, "--pid") && v) pid1 = v, i++;
    else if (!strcmp(a, "--count") && v) count = atoi(v), i++;
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
  char host[256];
  int port = 80;
  if (sscanf(node, "http://%255[^:/]:%d", host, &port) < 1) {
    fprintf(stderr, "loadgen: --node must be http://HOST:PORT\n");
    return 2;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  if (getaddrinfo(host, ps, &hints, &res) || !res) {
    fprintf(stderr, "loadgen: cannot resolve %s\n", host);
    return 2;
  }
  memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
  g_addrlen = res->ai_addrlen;
  freeaddrinfo(res);

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
  if (!npids || count <= 0 || conc <= 0) {
    fprintf(stderr, "loadgen: need --pid or --pids, --count > 0\n");
    return 2;
  }
  if (conc > count) conc = count;
  vn_err err;
  vn_err_clear(&err);
  item_key *k = hex ? item_key_from_hex(hex, &err) : item_key_generate(&err);
  if (!k) {
    fprintf(stderr, "loadgen: %s\n", err.msg);
    return 1;
  }
  msg *msgs = calloc((size_t)count, sizeof *msgs);
  uint8_t *data = malloc(dsize + 1);
  for (int i = 0; i < count; i++) {
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
    size_t blen;
    uint8_t *body = item_encode(it, &blen, &err);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST / HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      host, port, blen);
    msgs[i].req = malloc((size_t)hl + blen);
    memcpy(msgs[i].req, head, (size_t)hl);
    memcpy(msgs[i].req + hl, body, blen);
    msgs[i].len = (size_t)hl + blen;
    free(body);
    snprintf(msgs[i].id, sizeof msgs[i].id, "%s", it->id);
    snprintf(msgs[i].pid, sizeof msgs[i].pid, "%s", pid);
    item_free(it);
  }
  free(data);
  FILE *ack = acked ? fopen(acked, "a") : NULL;

  g_ep = epoll_create1(EPOLL_CLOEXEC);
  int ep = g_ep;
  conn *cs = calloc((size_t)conc, sizeof *cs);
  g_msgs = msgs;
  g_count = count;
  double t0 = now_ms();
  for (int i = 0; i < conc; i++) {
    cs[i].fd = -1;
    cs[i].cur = -1;
  }
  for (int i = 0; i < conc; i++) start(&cs[i]);
  struct epoll_event evs[64];
  while (g_done < count) {
    int ne = epoll_wait(ep, evs, 64, 1000);
    if (ne < 0 && errno != EINTR) break;
    if (ne <= 0) {
      /* Idle connections with work left (after failures): restart them. */
      for (int i = 0; i < conc; i++)
        if (cs[i].cur < 0 && g_next < g_count) start(&cs[i]);
      continue;
    }
    for (int e = 0; e < ne; e++) {
      conn *c = evs[e].data.ptr;
      if (c->cur < 0) continue;
      msg *m = &msgs[c->cur];
      int broken = (evs[e].events & (EPOLLERR | EPOLLHUP)) && !(evs[e].events & EPOLLIN);
      if (!broken && c->sent < m->len && (evs[e].events & EPOLLOUT)) {
        ssize_t w = send(c->fd, m->req + c->sent, m->len - c->sent, MSG_NOSIGNAL);
        if (w > 0) c->sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN) broken = 1;
        if (c->sent == m->len) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      int status = 0;
      ssize_t rl = 0;
      if (!broken && (evs[e].events & EPOLLIN)) {
        ssize_t r = recv(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got, 0);
        if (r > 0) {
          c->got += (size_t)r;
          rl = response_len(c, &status);
          if (rl < 0) broken = 1;
        } else if (r == 0 || errno != EAGAIN) {
          broken = 1;
        }
      }
      if (broken || rl > 0) {
        m->ms = now_ms() - c->t0;
        m->status = broken ? -1 : status;
        if (m->status == 200 && ack) {
          fprintf(ack, "%s %s\n", m->id, m->pid);
          fflush(ack);
        }
        g_done++;
        c->cur = -1;
        if (broken) {
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          close(c->fd);
          c->fd = -1;
          usleep(1000); /* node down: do not spin */
        }
        start(c);
      }
    }
  }
  double secs = (now_ms() - t0) / 1e3;
  double *lat = malloc(sizeof *lat * (size_t)count);
  int ok = 0;
  for (int i = 0; i < count; i++)
    if (msgs[i].status == 200) lat[ok++] = msgs[i].ms;
  qsort(lat, (size_t)ok, sizeof *lat, cmpd);
  int i99 = (int)(ok * 0.99);
  if (i99 >= ok) i99 = ok - 1;
  printf("sent %d\nok %d\nfailed %d\nseconds %.3f\nmsgs_per_s %.1f\np50_ms %.3f\np99_ms %.3f\nmax_ms %.3f\n",
         count, ok, count - ok, secs, ok / secs, ok ? lat[ok / 2] : 0, ok ? lat[i99] : 0,
         ok ? lat[ok - 1] : 0);
  if (!quiet && ok < count) {
    int shown = 0;
    for (int i = 0; i < count && shown < 3; i++)
      if (msgs[i].status != 200) {
        fprintf(stderr, "loadgen: message %d answered %d\n", i, msgs[i].status);
        shown++;
      }
  }
  if (ack) fclose(ack);
  for (int i = 0; i < conc; i++)
    if (cs[i].fd >= 0) close(cs[i].fd);
  close(ep);
  item_key_free(k);
  for (int i = 0; i < count; i++) free(msgs[i].req);
  free(msgs);
  free(lat);
  free(cs);
  for (int i = 0; i < npids; i++) free(pids[i]);
  free(pids);
  return 0;
}
