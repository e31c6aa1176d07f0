/* zygote.c - the zygote process and the worker processes it forks.
 *
 * The node starts the zygote by fork + exec of its own executable (argv[1] =
 * SBX_ZYGOTE_ARG, channel on fd 3, empty environment, ADDR_NO_RANDOMIZE): a
 * fresh image with the fixed layout that images and the string-hash seed
 * need. The zygote builds the Lua state (libraries + preload) once and
 * clones workers that inherit it copy-on-write. It keeps a small pool of
 * workers cloned and confined ahead of time (refilled while no request is
 * waiting), so a SPAWN is answered with a ready worker's channel at once.
 *
 * A worker is cloned with new namespaces (pid, net, ipc, uts, mount; with a
 * user namespace when that is what makes them permitted; none if nothing
 * works, with the reason in the zygote's note), then confines itself:
 * parent-death signal, fds reduced to its channel (+ stdio), rlimits,
 * no_new_privs, not dumpable, seccomp allow-list. It then serves frames until
 * CLOSE or EOF. The zygote keeps its dead workers as zombies until the node
 * asks for their status (WAIT), so a crash can be explained. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>

#include "sandbox/internal.h"

#define POOL_MAX 16

static sbx_lua *g_engine;        /* the zygote's state; each worker's own copy */
static unsigned long g_clone_ns; /* CLONE_NEW* flags that work here */
static unsigned g_ns;            /* the same as SBX_NS_* */
static int g_seccomp = 1;
static char g_note[256];
static struct {
  pid_t pid;
  int fd; /* the node's end of the worker's channel */
} g_pool[POOL_MAX];
static int g_npool, g_pool_target;

static unsigned long ns_to_clone(unsigned ns) {
  unsigned long f = 0;
  if (ns & SBX_NS_PID) f |= CLONE_NEWPID;
  if (ns & SBX_NS_NET) f |= CLONE_NEWNET;
  if (ns & SBX_NS_IPC) f |= CLONE_NEWIPC;
  if (ns & SBX_NS_UTS) f |= CLONE_NEWUTS;
  if (ns & SBX_NS_MNT) f |= CLONE_NEWNS;
  return f;
}

/* fork() with namespaces. The raw syscall (no glibc fork handlers) is safe
 * here: the zygote is single-threaded. */
static pid_t clone_ns(unsigned long flags) {
  return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

static int probe(unsigned long flags) {
  pid_t p = clone_ns(flags);
  if (p == 0) _exit(0);
  if (p < 0) return -errno;
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

/* Find which namespaces this host lets us create. */
static void choose_ns(unsigned want) {
  g_ns = 0;
  g_clone_ns = 0;
  g_note[0] = 0;
  if (!want) return;
  unsigned long f = ns_to_clone(want);
  int e = probe(f);
  if (!e) {
    g_clone_ns = f, g_ns = want;
    return;
  }
  int e2 = probe(f | CLONE_NEWUSER);
  if (!e2) {
    g_clone_ns = f | CLONE_NEWUSER, g_ns = want;
    snprintf(g_note, sizeof g_note, "namespaces need a user namespace here (%s without one)",
             strerror(-e));
    return;
  }
  snprintf(g_note, sizeof g_note,
           "workers run without namespaces: clone failed (%s; with a user namespace: %s)",
           strerror(-e), strerror(-e2));
}

/* ---- the worker ---- */

static void confine_fail(int fd, const char *what) {
  vn_err err;
  vn_errf(&err, "worker_spawn", "sandbox setup failed at %s: %s", what, strerror(errno));
  sbx_send_err(fd, &err);
  _exit(1);
}

static void set_limit(int res, rlim_t v) {
  struct rlimit rl = {v, v};
  setrlimit(res, &rl);
}

static void worker_serve(void) {
  int fd = SBX_WORKER_FD;
  for (;;) {
    uint8_t type, *body;
    size_t len;
    int xfd = -1;
    vn_err err = {0};
    if (sbx_recv(fd, -1, &type, &body, &len, &xfd, &err))
      _exit(err.code && !strcmp(err.code, "worker_eof") ? 0 : 1);
    sbx_buf out = {0};
    int lost = 0;
    if (type == SBX_W_APPLY) {
      sbx_call c;
      sbx_result r;
      if (sbx_decode_call(body, len, &c)) {
        vn_errf(&err, "worker_bad_request", "malformed APPLY frame");
        sbx_send_err(fd, &err);
      } else if (sbx_lua_apply(g_engine, &c, &r, &err)) {
        sbx_send_err(fd, &err);
        lost = 1;
      } else {
        sbx_encode_result(&out, &r);
        sbx_result_free(&r);
        if (out.bad) {
          vn_errf(&err, "worker_broken", "out of memory encoding the result");
          sbx_send_err(fd, &err);
        } else if (sbx_send(fd, SBX_W_RESULT, out.p, out.len, -1, NULL)) {
          _exit(1); /* the node would wait for a reply that cannot come */
        }
      }
    } else if (type == SBX_W_CHECKPOINT || type == SBX_W_RESTORE) {
      sbx_rd rd = {body, len, 0};
      uint64_t arg = type == SBX_W_CHECKPOINT ? sbx_rd_u64(&rd) : sbx_rd_u32(&rd);
      sbx_image_info info;
      int rc;
      if (rd.bad || rd.left || xfd < 0) {
        rc = vn_errf(&err, "worker_bad_request", "malformed frame or no file descriptor");
      } else if (type == SBX_W_CHECKPOINT) {
        rc = sbx_lua_checkpoint(g_engine, xfd, arg, &info, &err);
      } else {
        rc = sbx_lua_restore(g_engine, xfd, (unsigned)arg, NULL, &info, &err);
        lost = rc && err.code && !strcmp(err.code, "arena_lost");
      }
      if (rc) {
        sbx_send_err(fd, &err);
      } else {
        sbx_encode_info(&out, &info);
        sbx_send(fd, SBX_W_IMAGE, out.p, out.len, -1, NULL);
      }
    } else if (type == SBX_W_CLOSE) {
      _exit(0);
    } else {
      vn_errf(&err, "worker_bad_request", "unknown frame type %u", type);
      sbx_send_err(fd, &err);
    }
    if (xfd >= 0) close(xfd);
    sbx_buf_free(&out);
    free(body);
    if (lost) _exit(3); /* no state left: the node sees the error, then EOF */
  }
}

/* Runs in the new child; never returns. */
static void worker_main(int chan) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (dup2(chan, SBX_WORKER_FD) < 0) _exit(1); /* also drops the zygote's channel */
  int fd = SBX_WORKER_FD;
  if (syscall(SYS_close_range, SBX_WORKER_FD + 1, ~0U, 0)) confine_fail(fd, "close_range");
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (nul >= 0) {
    dup2(nul, 0);
    dup2(nul, 1);
    close(nul);
  }
  /* The mount namespace is not changed further: with no mount, open or
   * other path-taking system call allowed, the filesystem is out of reach. */
  if (g_ns & SBX_NS_UTS) sethostname("sandbox", 7);
  set_limit(RLIMIT_CORE, 0);
  set_limit(RLIMIT_NOFILE, 16);
  set_limit(RLIMIT_NPROC, 0);
  set_limit(RLIMIT_MEMLOCK, 0);
  set_limit(RLIMIT_MSGQUEUE, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) confine_fail(fd, "no_new_privs");
  prctl(PR_SET_DUMPABLE, 0);
  sbx_engine_worker_mode();
  vn_err err = {0};
  sbx_engine_prefault(g_engine);
  if (g_seccomp && sbx_seccomp_install(&err)) {
    sbx_send_err(fd, &err);
    _exit(1);
  }
  {
    /* Warm up while waiting in the pool: the first Lua call in a new
     * process is about 1 ms slower than the next ones (cold caches, first
     * faults), and it would otherwise be the spawn's. Every worker makes
     * this same call at this same point, so states stay identical across
     * workers (and replays); an image restored later replaces it all. */
    sbx_call wc = {.payload = "return nil", .payload_len = 10};
    sbx_result wr;
    if (!sbx_lua_apply(g_engine, &wc, &wr, &err)) sbx_result_free(&wr);
    vn_err_clear(&err);
  }
  sbx_buf b = {0};
  sbx_buf_u32(&b, g_ns);
  sbx_buf_u32(&b, (uint32_t)g_seccomp);
  sbx_buf_str(&b, g_note);
  if (b.bad || sbx_send(fd, SBX_W_HELLO, b.p, b.len, -1, NULL)) _exit(1);
  sbx_buf_free(&b);
  worker_serve();
  _exit(0);
}

/* ---- the zygote ---- */

static void reply_status(int fd, pid_t pid, int timeout_ms) {
  int st = 0, known = 0;
  struct timespec step = {0, 500 * 1000};
  for (int waited = 0;; waited++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      known = 1;
      break;
    }
    if (r < 0 && errno != EINTR) break; /* not our child (or reaped) */
    if (waited >= timeout_ms * 2) {     /* 0.5 ms steps */
      kill(pid, SIGKILL);
      known = waitpid(pid, &st, 0) == pid;
      break;
    }
    nanosleep(&step, NULL);
  }
  sbx_buf b = {0};
  sbx_buf_u32(&b, (uint32_t)known);
  sbx_buf_u32(&b, (uint32_t)st);
  sbx_send(fd, SBX_Z_STATUS, b.p, b.len, -1, NULL);
  sbx_buf_free(&b);
}

static int zygote_init(int fd, const uint8_t *body, size_t len, const sbx_hooks *hooks) {
  sbx_zygote_cfg cfg;
  vn_err err = {0};
  if (sbx_decode_zcfg(body, len, &cfg)) {
    vn_errf(&err, "worker_bad_request", "malformed INIT frame");
    goto fail;
  }
  if (!sbx_layout_fixed()) {
    vn_errf(&err, "sandbox_layout", "the zygote runs with address randomization");
    goto fail;
  }
  sbx_lua_cfg lc = {.reserve = cfg.reserve,
                    .modules = cfg.modules,
                    .nmodules = cfg.nmodules,
                    .mem_cap = cfg.mem_cap ? cfg.mem_cap : (size_t)256 << 20,
                    .preload = cfg.preload,
                    .preload_len = cfg.preload_len,
                    .preload_name = cfg.preload_name,
                    .preload_gas = cfg.preload_gas,
                    .open_libs = hooks ? hooks->open_libs : NULL};
  if (sbx_lua_new(&lc, &g_engine, &err)) goto fail;
  /* Start every worker with no garbage and no GC debt: otherwise the first
   * message of each new process pays a collection of the whole preloaded
   * heap. The same in every zygote, so states stay identical. */
  lua_gc(sbx_lua_state(g_engine), LUA_GCCOLLECT, 0);
  sbx_engine_prefault_prepare();
  g_seccomp = !cfg.no_seccomp;
  choose_ns(cfg.ns);
  g_pool_target = cfg.pool < 0 ? 0 : cfg.pool == 0 ? 2 : cfg.pool > POOL_MAX ? POOL_MAX : cfg.pool;
  if (g_seccomp && sbx_seccomp_prepare((g_ns & SBX_NS_PID) != 0, &err)) goto fail;
  sbx_zcfg_free(&cfg);
  /* Warm up what workers use after seccomp: OpenSSL's digest fetch reads its
   * configuration file on first use. */
  unsigned char md[32];
  unsigned mdlen;
  EVP_Digest("", 0, md, &mdlen, EVP_sha256(), NULL);
  sbx_arena_stats st;
  sbx_arena_stats_get(sbx_lua_arena(g_engine), &st);
  const sbx_layout *l = sbx_layout_self();
  sbx_buf b = {0};
  sbx_buf_u64(&b, st.footprint);
  sbx_buf_u32(&b, g_ns);
  sbx_buf_str(&b, g_note);
  sbx_buf_bytes(&b, l->exe.id, l->exe.len);
  sbx_buf_bytes(&b, l->lua.id, l->lua.len);
  sbx_buf_u64(&b, l->exe_base);
  sbx_buf_u64(&b, l->lua_base);
  int rc = b.bad ? -1 : sbx_send(fd, SBX_Z_READY, b.p, b.len, -1, NULL);
  sbx_buf_free(&b);
  return rc;
fail:
  sbx_zcfg_free(&cfg);
  sbx_send_err(fd, &err);
  return -1;
}

/* Clone one worker with its own channel; add it to the pool. */
static int prefork(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return -1;
  pid_t pid = clone_ns(g_clone_ns);
  if (pid == 0) {
    worker_main(sv[1]); /* drops every other fd, the pool's included */
    _exit(1);
  }
  close(sv[1]);
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    errno = e;
    return -1;
  }
  g_pool[g_npool].pid = pid;
  g_pool[g_npool].fd = sv[0];
  g_npool++;
  return 0;
}

static int request_waiting(int fd) {
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  return poll(&pf, 1, 0) != 0;
}

static void reply_spawn(int fd) {
  vn_err err = {0};
  if (!g_npool && prefork()) {
    vn_errf(&err, "worker_spawn", "clone: %s", strerror(errno));
    sbx_send_err(fd, &err);
    return;
  }
  /* Oldest first: it has had the most time to confine itself. */
  pid_t pid = g_pool[0].pid;
  int wfd = g_pool[0].fd;
  memmove(&g_pool[0], &g_pool[1], (size_t)(g_npool - 1) * sizeof g_pool[0]);
  g_npool--;
  sbx_buf b = {0};
  sbx_buf_u64(&b, (uint64_t)pid);
  sbx_send(fd, SBX_Z_SPAWNED, b.p, b.len, wfd, NULL);
  sbx_buf_free(&b);
  close(wfd);
}

static int zygote_run(pid_t parent, const sbx_hooks *hooks) {
  int fd = SBX_ZYGOTE_FD;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1; /* the node died before we got here */
  signal(SIGPIPE, SIG_IGN);
  uint8_t type, *body;
  size_t len;
  vn_err err = {0};
  if (sbx_recv(fd, -1, &type, &body, &len, NULL, &err) || type != SBX_Z_INIT) return 1;
  int rc = zygote_init(fd, body, len, hooks);
  free(body);
  if (rc) return 1;
  for (;;) {
    /* Refill the pool while nobody waits for us. */
    while (g_npool < g_pool_target && !request_waiting(fd))
      if (prefork()) break;
    int xfd = -1;
    if (sbx_recv(fd, -1, &type, &body, &len, &xfd, &err)) return 0; /* node gone */
    if (xfd >= 0) close(xfd);
    sbx_rd rd = {body, len, 0};
    if (type == SBX_Z_SPAWN) {
      reply_spawn(fd);
    } else if (type == SBX_Z_WAIT) {
      pid_t pid = (pid_t)sbx_rd_u64(&rd);
      int timeout = (int)sbx_rd_u32(&rd);
      if (rd.bad || pid <= 0) {
        vn_errf(&err, "worker_bad_request", "malformed WAIT frame");
        sbx_send_err(fd, &err);
      } else {
        reply_status(fd, pid, timeout);
      }
    } else {
      vn_errf(&err, "worker_bad_request", "unknown zygote frame type %u", type);
      sbx_send_err(fd, &err);
    }
    free(body);
  }
}

int sbx_zygote_main(int argc, char **argv, const sbx_hooks *hooks) {
  if (argc < 3 || strcmp(argv[1], SBX_ZYGOTE_ARG)) return 0;
  _exit(zygote_run((pid_t)atol(argv[2]), hooks));
}
