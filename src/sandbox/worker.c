/* worker.c - the node's side of the zygote and its workers.
 *
 * Every exchange is one request frame and one reply frame with a deadline.
 * When a worker's channel ends (EOF) or a deadline passes, the worker is
 * killed through its pidfd and the zygote is asked how it died, so the
 * caller gets "worker_seccomp: killed by the seccomp filter" or
 * "worker_crashed: killed by signal 11 (SEGV)" rather than a hang. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "sandbox/internal.h"

#define START_TIMEOUT_MS 60000 /* zygote INIT: runs the preload */
#define SPAWN_TIMEOUT_MS 10000
#define WAIT_TIMEOUT_MS 2000

struct sbx_zygote {
  pid_t pid;
  int fd;
  int timeout_ms;
  pthread_mutex_t mu; /* one exchange on the zygote channel at a time */
  unsigned ns;
  char note[256];
  sbx_layout layout;
};

struct sbx_worker {
  sbx_zygote *z;
  pid_t pid;
  int fd, pidfd;
  int dead;
  unsigned ns;
  int seccomp;
  int timeout_ms;
};

/* ---- zygote ---- */

int sbx_zygote_start(const sbx_zygote_cfg *cfg, sbx_zygote **out, vn_err *err) {
  *out = NULL;
  sbx_zygote *z = calloc(1, sizeof *z);
  if (!z) return vn_errf(err, "zygote_start", "out of memory");
  pthread_mutex_init(&z->mu, NULL);
  z->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
    free(z);
    return vn_errf(err, "zygote_start", "socketpair: %s", strerror(errno));
  }
  const char *exe = cfg->exe ? cfg->exe : "/proc/self/exe";
  char ppid[24];
  snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
  char *argv[] = {"vmnode-zygote", SBX_ZYGOTE_ARG, ppid, NULL};
  /* No inherited variables: LD_* ones could move libraries (and Lua's hash
   * seed with them). LD_BIND_NOW: the zygote resolves every library's
   * symbols once; workers, its forks, then never run the dynamic linker
   * (lazy binding made each new worker's first message about 1 ms slower). */
  char bind_now[] = "LD_BIND_NOW=1";
  char *envp[] = {bind_now, NULL};
  pid_t pid = fork();
  if (pid == 0) { /* async-signal-safe calls only until exec */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (sv[1] == SBX_ZYGOTE_FD) {
      if (fcntl(sv[1], F_SETFD, 0)) _exit(126);
    } else if (dup2(sv[1], SBX_ZYGOTE_FD) < 0) {
      _exit(126);
    }
    syscall(SYS_close_range, SBX_ZYGOTE_FD + 1, ~0U, 0);
    if (sbx_fix_layout_before_exec()) _exit(125);
    execve(exe, argv, envp);
    _exit(127);
  }
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    free(z);
    return vn_errf(err, "zygote_start", "fork: %s", strerror(errno));
  }
  z->pid = pid;
  z->fd = sv[0];
  sbx_buf b = {0};
  sbx_encode_zcfg(&b, cfg);
  uint8_t type, *body = NULL;
  size_t len;
  vn_err e = {0};
  int rc = b.bad ? vn_errf(&e, "zygote_start", "out of memory")
                 : sbx_send(z->fd, SBX_Z_INIT, b.p, b.len, -1, &e);
  sbx_buf_free(&b);
  if (!rc) rc = sbx_recv(z->fd, START_TIMEOUT_MS, &type, &body, &len, NULL, &e);
  if (!rc && type == SBX_Z_READY) {
    sbx_rd rd = {body, len, 0};
    sbx_rd_u64(&rd);
    z->ns = sbx_rd_u32(&rd);
    size_t nn, en, ln;
    const char *note = sbx_rd_bytes(&rd, &nn);
    snprintf(z->note, sizeof z->note, "%.*s", (int)(nn < sizeof z->note ? nn : 0), note);
    const char *eid = sbx_rd_bytes(&rd, &en), *lid = sbx_rd_bytes(&rd, &ln);
    z->layout.exe_base = sbx_rd_u64(&rd);
    z->layout.lua_base = sbx_rd_u64(&rd);
    if (en > SBX_BUILD_ID_MAX || ln > SBX_BUILD_ID_MAX) rd.bad = 1;
    if (!rd.bad) {
      if (*z->note) log_warn("sandbox.namespaces", "note=\"%s\"", z->note);
      z->layout.exe.len = (uint8_t)en;
      memcpy(z->layout.exe.id, eid, en);
      z->layout.lua.len = (uint8_t)ln;
      memcpy(z->layout.lua.id, lid, ln);
      free(body);
      *out = z;
      return 0;
    }
    vn_errf(&e, "zygote_start", "malformed READY frame");
  } else if (!rc && type == SBX_ERR) {
    sbx_err_from_body(body, len, &e);
  } else if (!rc) {
    vn_errf(&e, "zygote_start", "unexpected frame %u", type);
  }
  free(body);
  /* Say why when the child never became a zygote. */
  int st;
  for (int i = 0; i < 100 && waitpid(z->pid, &st, WNOHANG) == 0; i++) usleep(1000);
  if (waitpid(z->pid, &st, WNOHANG) == 0 || !WIFEXITED(st) || WEXITSTATUS(st) < 125)
    vn_errf(err, "zygote_start", "starting the zygote (%s): %s", exe, e.msg);
  else
    vn_errf(err, "zygote_start", "starting the zygote: %s %s", exe,
            WEXITSTATUS(st) == 127   ? "could not be executed"
            : WEXITSTATUS(st) == 126 ? "(fd setup failed before exec)"
                                     : "(cannot set ADDR_NO_RANDOMIZE before exec)");
  close(z->fd);
  pthread_mutex_destroy(&z->mu);
  free(z);
  return -1;
}

void sbx_zygote_stop(sbx_zygote *z) {
  if (!z) return;
  close(z->fd);
  int st;
  for (int i = 0; i < 500; i++) { /* it exits on EOF; 5 s at most */
    pid_t r = waitpid(z->pid, &st, WNOHANG);
    if (r == z->pid || (r < 0 && errno != EINTR)) goto done;
    usleep(10000);
  }
  kill(z->pid, SIGKILL);
  waitpid(z->pid, &st, 0);
done:
  pthread_mutex_destroy(&z->mu);
  free(z);
}

pid_t sbx_zygote_pid(const sbx_zygote *z) {
  return z->pid;
}
const char *sbx_zygote_note(const sbx_zygote *z) {
  return z->note;
}
const sbx_layout *sbx_zygote_layout(const sbx_zygote *z) {
  return &z->layout;
}

/* One request/reply with the zygote, under its lock. */
static int zygote_call(sbx_zygote *z, uint8_t type, const sbx_buf *req, int fd_pass, uint8_t *rtype,
                       uint8_t **body, size_t *len, int *fd_got, int timeout, vn_err *err) {
  pthread_mutex_lock(&z->mu);
  int rc = sbx_send(z->fd, type, req->p, req->len, fd_pass, err);
  if (!rc) rc = sbx_recv(z->fd, timeout, rtype, body, len, fd_got, err);
  pthread_mutex_unlock(&z->mu);
  return rc;
}

/* The wait status of a dead worker (reaped by the zygote); 0 = unknown. */
static int worker_status(sbx_worker *w, int *status) {
  sbx_buf b = {0};
  sbx_buf_u64(&b, (uint64_t)w->pid);
  sbx_buf_u32(&b, WAIT_TIMEOUT_MS);
  uint8_t type, *body = NULL;
  size_t len;
  int known = 0;
  if (!b.bad &&
      !zygote_call(w->z, SBX_Z_WAIT, &b, -1, &type, &body, &len, NULL, WAIT_TIMEOUT_MS + 1000,
                   NULL) &&
      type == SBX_Z_STATUS) {
    sbx_rd rd = {body, len, 0};
    known = (int)sbx_rd_u32(&rd);
    *status = (int)sbx_rd_u32(&rd);
    known = known && !rd.bad;
  }
  free(body);
  sbx_buf_free(&b);
  return known;
}

static void worker_kill(sbx_worker *w) {
  if (w->pidfd >= 0) syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
}

static void wait_exit(sbx_worker *w, int ms);

/* The worker is gone or must go: kill it, learn why, fill err. Returns -1. */
static int worker_lost(sbx_worker *w, const char *during, const vn_err *cause, vn_err *err) {
  int timeout = cause && cause->code && !strcmp(cause->code, "worker_timeout");
  worker_kill(w);
  wait_exit(w, WAIT_TIMEOUT_MS);
  int st = 0, known = worker_status(w, &st);
  w->dead = 1;
  close(w->fd);
  w->fd = -1;
  if (timeout)
    return vn_errf(err, "worker_timeout",
                   "worker %ld gave no reply to %s within %d ms and was killed", (long)w->pid,
                   during, w->timeout_ms);
  if (known && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
    return vn_errf(err, "worker_seccomp",
                   "worker %ld was killed by the seccomp filter during %s (it made a forbidden "
                   "system call)",
                   (long)w->pid, during);
  if (known && WIFSIGNALED(st)) {
    const char *abbrev = sigabbrev_np(WTERMSIG(st));
    return vn_errf(err, "worker_crashed", "worker %ld was killed by signal %d (SIG%s) during %s",
                   (long)w->pid, WTERMSIG(st), abbrev ? abbrev : "?", during);
  }
  if (known && WIFEXITED(st) && WEXITSTATUS(st) == SBX_EXIT_PANIC)
    return vn_errf(err, "worker_crashed",
                   "worker %ld stopped on a Lua panic (an error outside any protected call) "
                   "during %s",
                   (long)w->pid, during);
  if (known && WIFEXITED(st))
    return vn_errf(err, "worker_crashed", "worker %ld exited with status %d during %s",
                   (long)w->pid, WEXITSTATUS(st), during);
  return vn_errf(err, "worker_crashed", "worker %ld is gone during %s (%s)", (long)w->pid, during,
                 cause ? cause->msg : "no status");
}

/* Until the worker has exited (its pidfd polls readable), at most ms. */
static void wait_exit(sbx_worker *w, int ms) {
  if (w->pidfd < 0) return;
  struct pollfd pf = {.fd = w->pidfd, .events = POLLIN};
  while (poll(&pf, 1, ms) < 0 && errno == EINTR) {
  }
}

static int spawn_once(sbx_zygote *z, sbx_worker **out, vn_err *err) {
  *out = NULL;
  sbx_worker *w = calloc(1, sizeof *w);
  if (!w) return vn_errf(err, "worker_spawn", "out of memory");
  w->z = z;
  w->fd = w->pidfd = -1;
  w->timeout_ms = z->timeout_ms;
  sbx_buf none = {0};
  uint8_t type, *body = NULL;
  size_t len;
  vn_err e = {0};
  int rc = zygote_call(z, SBX_Z_SPAWN, &none, -1, &type, &body, &len, &w->fd, SPAWN_TIMEOUT_MS, &e);
  if (!rc && type == SBX_Z_SPAWNED && w->fd >= 0) {
    sbx_rd rd = {body, len, 0};
    w->pid = (pid_t)sbx_rd_u64(&rd);
    if (rd.bad) rc = vn_errf(&e, "worker_spawn", "malformed SPAWNED frame");
  } else if (!rc) {
    rc = type == SBX_ERR ? sbx_err_from_body(body, len, &e)
                         : vn_errf(&e, "worker_spawn", "unexpected frame %u", type);
  }
  free(body);
  body = NULL;
  if (rc) {
    if (w->fd >= 0) close(w->fd);
    free(w);
    return vn_errf(err, "worker_spawn", "zygote: %s", e.msg);
  }
  /* The zygote keeps its workers unreaped until WAIT: the pid cannot be reused. */
  w->pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
  /* The worker says hello once it is confined. */
  rc = sbx_recv(w->fd, SPAWN_TIMEOUT_MS, &type, &body, &len, NULL, &e);
  if (!rc && type == SBX_W_HELLO) {
    sbx_rd rd = {body, len, 0};
    w->ns = sbx_rd_u32(&rd);
    w->seccomp = (int)sbx_rd_u32(&rd);
    free(body);
    *out = w;
    return 0;
  }
  if (!rc && type == SBX_ERR) {
    sbx_err_from_body(body, len, &e);
    worker_kill(w);
    wait_exit(w, WAIT_TIMEOUT_MS);
    int st;
    worker_status(w, &st);
    w->dead = 1;
    vn_errf(err, "worker_spawn", "worker setup: %s", e.msg);
  } else {
    worker_lost(w, "setup", rc ? &e : NULL, &e);
    vn_errf(err, "worker_spawn", "%s", e.msg);
  }
  free(body);
  sbx_worker_close(w);
  return -1;
}

int sbx_worker_spawn(sbx_zygote *z, sbx_worker **out, vn_err *err) {
  /* A pooled worker may have died while it waited (OOM killer): one retry. */
  if (!spawn_once(z, out, err)) return 0;
  return spawn_once(z, out, err);
}

/* Send a request, read the reply (type expected or ERR). */
static int worker_call(sbx_worker *w, const char *what, uint8_t type, const sbx_buf *req,
                       int fd_pass, uint8_t want, uint8_t **body, size_t *len, vn_err *err) {
  *body = NULL;
  if (w->dead)
    return vn_errf(err, "worker_dead", "worker %ld is dead; spawn another", (long)w->pid);
  if (req->bad) return vn_errf(err, "worker_io", "out of memory for the request");
  vn_err e = {0};
  uint8_t rtype;
  if (sbx_send(w->fd, type, req->p, req->len, fd_pass, &e) ||
      sbx_recv(w->fd, w->timeout_ms, &rtype, body, len, NULL, &e))
    return worker_lost(w, what, &e, err);
  if (rtype == want) return 0;
  int rc = rtype == SBX_ERR ? sbx_err_from_body(*body, *len, err)
                            : vn_errf(err, "worker_io", "unexpected frame %u", rtype);
  free(*body);
  *body = NULL;
  if (err && err->code &&
      (!strcmp(err->code, "arena_lost") || !strcmp(err->code, "worker_broken"))) {
    vn_err keep = *err;
    worker_lost(w, what, NULL, NULL);
    *err = keep;
  }
  return rc;
}

int sbx_worker_apply(sbx_worker *w, const sbx_call *c, sbx_result *r, vn_err *err) {
  memset(r, 0, sizeof *r);
  if (c->payload_len > SBX_PAYLOAD_MAX)
    return vn_errf(err, "worker_bad_request", "payload of %zu bytes is over %zu", c->payload_len,
                   SBX_PAYLOAD_MAX);
  sbx_buf b = {0};
  sbx_encode_call(&b, c);
  uint8_t *body;
  size_t len;
  int rc = worker_call(w, "apply", SBX_W_APPLY, &b, -1, SBX_W_RESULT, &body, &len, err);
  sbx_buf_free(&b);
  if (rc) return -1;
  rc = sbx_decode_result(body, len, r) ? vn_errf(err, "worker_io", "malformed RESULT frame") : 0;
  free(body);
  return rc;
}

static int image_call(sbx_worker *w, const char *what, uint8_t type, const sbx_buf *b, int fd,
                      sbx_image_info *info, vn_err *err) {
  uint8_t *body;
  size_t len;
  if (worker_call(w, what, type, b, fd, SBX_W_IMAGE, &body, &len, err)) return -1;
  sbx_image_info tmp;
  int rc = sbx_decode_info(body, len, info ? info : &tmp)
               ? vn_errf(err, "worker_io", "malformed IMAGE frame")
               : 0;
  free(body);
  return rc;
}

int sbx_worker_checkpoint(sbx_worker *w, int fd, uint64_t tag, sbx_image_info *info, vn_err *err) {
  sbx_buf b = {0};
  sbx_buf_u64(&b, tag);
  int rc = image_call(w, "checkpoint", SBX_W_CHECKPOINT, &b, fd, info, err);
  sbx_buf_free(&b);
  return rc;
}

int sbx_worker_restore(sbx_worker *w, int fd, unsigned flags, sbx_image_info *info, vn_err *err) {
  sbx_buf b = {0};
  sbx_buf_u32(&b, flags);
  int rc = image_call(w, "restore", SBX_W_RESTORE, &b, fd, info, err);
  sbx_buf_free(&b);
  return rc;
}

void sbx_worker_close(sbx_worker *w) {
  if (!w) return;
  if (!w->dead) {
    sbx_send(w->fd, SBX_W_CLOSE, NULL, 0, -1, NULL);
    uint8_t type, *body = NULL;
    size_t len;
    /* Expect EOF soon; anything else (or nothing) ends in a kill. */
    if (!sbx_recv(w->fd, WAIT_TIMEOUT_MS, &type, &body, &len, NULL, NULL)) free(body);
    worker_kill(w);
    wait_exit(w, WAIT_TIMEOUT_MS); /* so the zygote reaps at once */
    int st;
    worker_status(w, &st);
  }
  if (w->fd >= 0) close(w->fd);
  if (w->pidfd >= 0) close(w->pidfd);
  free(w);
}

void sbx_worker_set_timeout(sbx_worker *w, int timeout_ms) {
  w->timeout_ms = timeout_ms > 0 ? timeout_ms : w->z->timeout_ms;
}

pid_t sbx_worker_pid(const sbx_worker *w) {
  return w->pid;
}
int sbx_worker_alive(const sbx_worker *w) {
  return !w->dead;
}

int sbx_worker_exited(const sbx_worker *w) {
  if (w->dead) return 1;
  if (w->pidfd < 0) return 0;
  struct pollfd p = {.fd = w->pidfd, .events = POLLIN};
  return poll(&p, 1, 0) == 1; /* a pidfd is readable once the process has exited */
}
unsigned sbx_worker_ns(const sbx_worker *w) {
  return w->ns;
}
int sbx_worker_seccomp(const sbx_worker *w) {
  return w->seccomp;
}
