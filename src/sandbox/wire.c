/* wire.c - frames over a unix stream socket, with one optional fd each.
 *
 * Frame: u32 length (little-endian, counts type + body), u8 type, body.
 * Body fields are little-endian u32/u64 and byte strings (u32 length +
 * bytes), in the fixed order each frame type defines (docs/worker.md). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* ---- buffers ---- */

static int grow(sbx_buf *b, size_t n) {
  if (b->bad) return -1;
  if (b->len + n <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    b->bad = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void sbx_buf_raw(sbx_buf *b, const void *s, size_t n) {
  if (n && !grow(b, n)) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
  }
}

void sbx_buf_u32(sbx_buf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  sbx_buf_raw(b, x, 4);
}

void sbx_buf_u64(sbx_buf *b, uint64_t v) {
  sbx_buf_u32(b, (uint32_t)v);
  sbx_buf_u32(b, (uint32_t)(v >> 32));
}

void sbx_buf_bytes(sbx_buf *b, const void *s, size_t n) {
  if (n > UINT32_MAX) {
    b->bad = 1;
    return;
  }
  sbx_buf_u32(b, (uint32_t)n);
  sbx_buf_raw(b, s, n);
}

void sbx_buf_str(sbx_buf *b, const char *s) {
  sbx_buf_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

void sbx_buf_free(sbx_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- readers ---- */

void sbx_rd_raw(sbx_rd *r, void *out, size_t n) {
  if (r->bad || r->left < n) {
    r->bad = 1;
    memset(out, 0, n);
    return;
  }
  memcpy(out, r->p, n);
  r->p += n;
  r->left -= n;
}

uint32_t sbx_rd_u32(sbx_rd *r) {
  uint8_t x[4];
  sbx_rd_raw(r, x, 4);
  return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
}

uint64_t sbx_rd_u64(sbx_rd *r) {
  uint64_t lo = sbx_rd_u32(r);
  return lo | (uint64_t)sbx_rd_u32(r) << 32;
}

const char *sbx_rd_bytes(sbx_rd *r, size_t *n) {
  size_t len = sbx_rd_u32(r);
  if (r->bad || r->left < len) {
    r->bad = 1;
    *n = 0;
    return "";
  }
  const char *s = (const char *)r->p;
  r->p += len;
  r->left -= len;
  *n = len;
  return s;
}

char *sbx_rd_strdup(sbx_rd *r) {
  size_t n;
  const char *s = sbx_rd_bytes(r, &n);
  if (r->bad) return NULL;
  char *c = malloc(n + 1);
  if (!c) return NULL;
  memcpy(c, s, n);
  c[n] = 0;
  return c;
}

/* ---- frames ---- */

int sbx_send(int fd, uint8_t type, const void *body, size_t len, int fd_pass, vn_err *err) {
  if (len + 1 > SBX_FRAME_MAX)
    return vn_errf(err, "worker_io", "frame of %zu bytes is over the %zu byte limit", len,
                   SBX_FRAME_MAX);
  uint8_t hdr[5];
  uint32_t n = (uint32_t)(len + 1);
  hdr[0] = (uint8_t)n, hdr[1] = (uint8_t)(n >> 8), hdr[2] = (uint8_t)(n >> 16);
  hdr[3] = (uint8_t)(n >> 24), hdr[4] = type;
  struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)body, len}};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cm;
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  if (fd_pass >= 0) {
    memset(&cm, 0, sizeof cm);
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof cm.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd_pass, sizeof(int));
  }
  size_t total = sizeof hdr + len;
  while (total) {
    ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return vn_errf(err, "worker_io", "sending a frame: %s", strerror(errno));
    total -= (size_t)w;
    mh.msg_control = NULL; /* the fd went with the first byte */
    mh.msg_controllen = 0;
    while (w > 0 && mh.msg_iovlen) {
      if ((size_t)w >= mh.msg_iov[0].iov_len) {
        w -= (ssize_t)mh.msg_iov[0].iov_len;
        mh.msg_iov++;
        mh.msg_iovlen--;
      } else {
        mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + w;
        mh.msg_iov[0].iov_len -= (size_t)w;
        w = 0;
      }
    }
  }
  return 0;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Read exactly n bytes before the deadline (-1: none); collect one fd. With a
 * deadline, poll only when a non-blocking read finds nothing (saves a system
 * call per read when the reply is already there). */
static int read_full(int fd, void *buf, size_t n, long long deadline, int *fd_got, int *began,
                     vn_err *err) {
  char *p = buf;
  while (n) {
    union {
      char buf[CMSG_SPACE(sizeof(int) * 4)];
      struct cmsghdr align;
    } cm;
    struct iovec iov = {p, n};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | (deadline >= 0 ? MSG_DONTWAIT : 0));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && deadline >= 0) {
      long long left = deadline - now_ms();
      if (left <= 0) return vn_errf(err, "worker_timeout", "no reply within the time limit");
      struct pollfd pf = {.fd = fd, .events = POLLIN};
      int pr = poll(&pf, 1, (int)(left > 1000000 ? 1000000 : left));
      if (pr < 0 && errno != EINTR) return vn_errf(err, "worker_io", "poll: %s", strerror(errno));
      continue;
    }
    if (r < 0) return vn_errf(err, "worker_io", "reading a frame: %s", strerror(errno));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        if (*fd_got < 0)
          *fd_got = got;
        else
          close(got); /* only one fd per frame */
      }
    }
    if (r == 0) {
      if (!*began) return vn_errf(err, "worker_eof", "the peer closed the channel");
      return vn_errf(err, "worker_io", "the peer closed the channel in the middle of a frame");
    }
    *began = 1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int sbx_recv(int fd, int timeout_ms, uint8_t *type, uint8_t **body, size_t *len, int *fd_got,
             vn_err *err) {
  long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  int got = -1, began = 0;
  uint8_t hdr[5];
  *body = NULL;
  *len = 0;
  if (read_full(fd, hdr, sizeof hdr, deadline, &got, &began, err)) goto fail;
  uint32_t n =
      (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (n < 1 || n > SBX_FRAME_MAX) {
    vn_errf(err, "worker_io", "bad frame length %u", n);
    goto fail;
  }
  *type = hdr[4];
  uint8_t *b = malloc(n);
  if (!b) {
    vn_errf(err, "worker_io", "out of memory for a %u byte frame", n);
    goto fail;
  }
  if (read_full(fd, b, n - 1, deadline, &got, &began, err)) {
    free(b);
    goto fail;
  }
  b[n - 1] = 0;
  *body = b;
  *len = n - 1;
  if (fd_got)
    *fd_got = got;
  else if (got >= 0)
    close(got);
  return 0;
fail:
  if (got >= 0) close(got);
  if (fd_got) *fd_got = -1;
  return -1;
}

void sbx_send_err(int fd, const vn_err *err) {
  sbx_buf b = {0};
  sbx_buf_str(&b, err && err->code ? err->code : "error");
  sbx_buf_str(&b, err ? err->msg : "");
  if (!b.bad) sbx_send(fd, SBX_ERR, b.p, b.len, -1, NULL);
  sbx_buf_free(&b);
}

int sbx_err_from_body(const uint8_t *body, size_t len, vn_err *err) {
  sbx_rd r = {body, len, 0};
  size_t cn, mn;
  const char *code = sbx_rd_bytes(&r, &cn), *msg = sbx_rd_bytes(&r, &mn);
  if (r.bad) return vn_errf(err, "worker_io", "malformed error frame");
  /* Codes are static strings in vn_err: map back to the known ones. */
  static const char *const known[] = {"image_io",
                                      "image_corrupt",
                                      "image_version",
                                      "image_build_mismatch",
                                      "image_layout_mismatch",
                                      "arena_lost",
                                      "arena_map",
                                      "lua_init",
                                      "worker_io",
                                      "worker_bad_request",
                                      "sandbox_seccomp",
                                      "worker_broken"};
  const char *c = "worker_error";
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (strlen(known[i]) == cn && !memcmp(known[i], code, cn)) c = known[i];
  return vn_errf(err, c, "%.*s", (int)mn, msg);
}

/* ---- structured bodies ---- */

void sbx_encode_call(sbx_buf *b, const sbx_call *c) {
  sbx_buf_str(b, c->entry);
  sbx_buf_str(b, c->chunkname);
  sbx_buf_bytes(b, c->payload, c->payload_len);
  sbx_buf_u64(b, c->gas_limit);
  sbx_buf_u64(b, (uint64_t)c->timestamp);
  sbx_buf_u64(b, c->seed[0]);
  sbx_buf_u64(b, c->seed[1]);
  sbx_buf_u64(b, c->mem_cap);
}

/* Names on the wire are not NUL-terminated: decode_call copies entry and
 * chunkname here (a worker decodes one call at a time). */
static char g_entry[256], g_chunk[256];

int sbx_decode_call(const uint8_t *body, size_t len, sbx_call *c) {
  sbx_rd r = {body, len, 0};
  size_t en, cn;
  const char *e = sbx_rd_bytes(&r, &en), *cname = sbx_rd_bytes(&r, &cn);
  memset(c, 0, sizeof *c);
  c->payload = sbx_rd_bytes(&r, &c->payload_len);
  c->gas_limit = sbx_rd_u64(&r);
  c->timestamp = (int64_t)sbx_rd_u64(&r);
  c->seed[0] = sbx_rd_u64(&r);
  c->seed[1] = sbx_rd_u64(&r);
  c->mem_cap = (size_t)sbx_rd_u64(&r);
  if (r.bad || r.left || en >= sizeof g_entry || cn >= sizeof g_chunk || memchr(e, 0, en) ||
      memchr(cname, 0, cn))
    return -1;
  memcpy(g_entry, e, en);
  g_entry[en] = 0;
  memcpy(g_chunk, cname, cn);
  g_chunk[cn] = 0;
  c->entry = g_entry;
  c->chunkname = cn ? g_chunk : NULL;
  return 0;
}

void sbx_encode_result(sbx_buf *b, const sbx_result *r) {
  sbx_buf_u32(b, (uint32_t)r->status);
  sbx_buf_u64(b, r->gas_used);
  sbx_buf_u64(b, r->footprint);
  sbx_buf_u32(b, (uint32_t)r->has_value | (uint32_t)(r->output_truncated ? 2 : 0));
  sbx_buf_bytes(b, r->value, r->value_len);
  sbx_buf_str(b, r->error);
  sbx_buf_bytes(b, r->output, r->output_len);
}

static char *dup_n(const char *s, size_t n) {
  char *c = malloc(n + 1);
  if (c) {
    memcpy(c, s, n);
    c[n] = 0;
  }
  return c;
}

int sbx_decode_result(const uint8_t *body, size_t len, sbx_result *res) {
  sbx_rd r = {body, len, 0};
  memset(res, 0, sizeof *res);
  res->status = (sbx_status)sbx_rd_u32(&r);
  res->gas_used = sbx_rd_u64(&r);
  res->footprint = sbx_rd_u64(&r);
  uint32_t flags = sbx_rd_u32(&r);
  size_t vn, en, on;
  const char *v = sbx_rd_bytes(&r, &vn), *e = sbx_rd_bytes(&r, &en), *o = sbx_rd_bytes(&r, &on);
  if (r.bad || r.left) return -1;
  res->has_value = flags & 1;
  res->output_truncated = (flags & 2) != 0;
  res->value = res->has_value ? dup_n(v, vn) : NULL;
  res->value_len = res->has_value ? vn : 0;
  res->error = res->status != SBX_OK ? dup_n(e, en) : NULL;
  res->output = dup_n(o, on);
  res->output_len = on;
  if ((res->has_value && !res->value) || (res->status != SBX_OK && !res->error) || !res->output) {
    sbx_result_free(res);
    return -1;
  }
  return 0;
}

void sbx_encode_info(sbx_buf *b, const sbx_image_info *i) {
  sbx_buf_u32(b, i->version);
  sbx_buf_u64(b, i->base);
  sbx_buf_u64(b, i->image_len);
  sbx_buf_u64(b, i->footprint);
  sbx_buf_u64(b, i->cap);
  sbx_buf_u64(b, i->tag);
  sbx_buf_bytes(b, i->layout.exe.id, i->layout.exe.len);
  sbx_buf_bytes(b, i->layout.lua.id, i->layout.lua.len);
  sbx_buf_u64(b, i->layout.exe_base);
  sbx_buf_u64(b, i->layout.lua_base);
  sbx_buf_raw(b, i->sha256, 32);
  sbx_buf_u64(b, i->file_len);
}

int sbx_decode_info(const uint8_t *body, size_t len, sbx_image_info *i) {
  sbx_rd r = {body, len, 0};
  memset(i, 0, sizeof *i);
  i->version = sbx_rd_u32(&r);
  i->base = sbx_rd_u64(&r);
  i->image_len = sbx_rd_u64(&r);
  i->footprint = sbx_rd_u64(&r);
  i->cap = sbx_rd_u64(&r);
  i->tag = sbx_rd_u64(&r);
  size_t en, ln;
  const char *e = sbx_rd_bytes(&r, &en), *l = sbx_rd_bytes(&r, &ln);
  if (en > SBX_BUILD_ID_MAX || ln > SBX_BUILD_ID_MAX) return -1;
  memcpy(i->layout.exe.id, e, en);
  i->layout.exe.len = (uint8_t)en;
  memcpy(i->layout.lua.id, l, ln);
  i->layout.lua.len = (uint8_t)ln;
  i->layout.exe_base = sbx_rd_u64(&r);
  i->layout.lua_base = sbx_rd_u64(&r);
  sbx_rd_raw(&r, i->sha256, 32);
  i->file_len = sbx_rd_u64(&r);
  return r.bad || r.left ? -1 : 0;
}

void sbx_encode_zcfg(sbx_buf *b, const sbx_zygote_cfg *c) {
  sbx_buf_u32(b, (uint32_t)c->nmodules);
  for (size_t i = 0; i < c->nmodules; i++) {
    sbx_buf_str(b, c->modules[i].name);
    sbx_buf_bytes(b, c->modules[i].src, c->modules[i].len);
  }
  sbx_buf_bytes(b, c->preload, c->preload ? c->preload_len : 0);
  sbx_buf_str(b, c->preload_name);
  sbx_buf_u64(b, c->preload_gas);
  sbx_buf_u64(b, c->mem_cap);
  sbx_buf_u64(b, c->reserve);
  sbx_buf_u32(b, c->ns);
  sbx_buf_u32(b, (uint32_t)c->no_seccomp);
  sbx_buf_u32(b, (uint32_t)c->pool);
}

int sbx_decode_zcfg(const uint8_t *body, size_t len, sbx_zygote_cfg *c) {
  sbx_rd r = {body, len, 0};
  memset(c, 0, sizeof *c);
  uint32_t nm = sbx_rd_u32(&r);
  if (r.bad || nm > 10000) return -1;
  sbx_module *mods = nm ? calloc(nm, sizeof *mods) : NULL;
  if (nm && !mods) return -1;
  c->modules = mods;
  c->nmodules = nm;
  for (uint32_t i = 0; i < nm; i++) {
    size_t an, sn;
    const char *a = sbx_rd_bytes(&r, &an), *src = sbx_rd_bytes(&r, &sn);
    if (r.bad) break;
    mods[i].name = dup_n(a, an);
    mods[i].src = dup_n(src, sn);
    mods[i].len = sn;
    if (!mods[i].name || !mods[i].src) r.bad = 1;
  }
  if (r.bad) {
    sbx_zcfg_free(c);
    return -1;
  }
  size_t pn, nn;
  const char *p = sbx_rd_bytes(&r, &pn), *name = sbx_rd_bytes(&r, &nn);
  c->preload_gas = sbx_rd_u64(&r);
  c->mem_cap = (size_t)sbx_rd_u64(&r);
  c->reserve = (size_t)sbx_rd_u64(&r);
  c->ns = sbx_rd_u32(&r);
  c->no_seccomp = (int)sbx_rd_u32(&r);
  c->pool = (int)sbx_rd_u32(&r);
  if (r.bad || r.left) {
    sbx_zcfg_free(c);
    return -1;
  }
  c->preload = pn ? dup_n(p, pn) : NULL;
  c->preload_len = pn;
  c->preload_name = nn ? dup_n(name, nn) : NULL;
  return 0;
}

void sbx_zcfg_free(sbx_zygote_cfg *c) {
  for (size_t i = 0; i < c->nmodules; i++) {
    free((char *)c->modules[i].name);
    free((char *)c->modules[i].src);
  }
  free((sbx_module *)c->modules);
  free((char *)c->preload);
  free((char *)c->preload_name);
  memset(c, 0, sizeof *c);
}
