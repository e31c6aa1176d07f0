/* seccomp.c - the worker's system-call allow-list (libseccomp).
 *
 * A worker only moves frames over its socket, allocates memory and writes or
 * maps images through fds it was given. The list below is what that needs
 * (found with strace on the worker loop: apply, checkpoint, restore, close,
 * and abort() for a Lua panic). Anything else - open, socket, connect,
 * execve, clone, kill, ptrace, mount, ... - kills the whole worker (SIGSYS),
 * which the node reports as "worker_seccomp". Memory can never be made
 * executable: mmap and mprotect are allowed only without PROT_EXEC.
 *
 * The zygote compiles the filter once (libseccomp takes about a millisecond
 * for that); each worker installs the compiled program with one prctl. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox/internal.h"

static struct sock_fprog g_prog; /* compiled in the zygote, inherited by workers */

int sbx_seccomp_prepare(int in_pid_ns, vn_err *err) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (!ctx) return vn_errf(err, "sandbox_seccomp", "seccomp_init failed");
  static const int plain[] = {
      /* the channel */
      SCMP_SYS(read),
      SCMP_SYS(write),
      SCMP_SYS(recvmsg),
      SCMP_SYS(sendmsg),
      SCMP_SYS(close),
      /* memory: malloc and the arena */
      SCMP_SYS(brk),
      SCMP_SYS(munmap),
      SCMP_SYS(mremap),
      SCMP_SYS(madvise),
      /* images, through fds the node passed */
      SCMP_SYS(pread64),
      SCMP_SYS(pwrite64),
      SCMP_SYS(lseek),
      SCMP_SYS(ftruncate),
      /* process basics; rt_sigprocmask also for the Lua stack switch (swapcontext) */
      SCMP_SYS(exit),
      SCMP_SYS(exit_group),
      SCMP_SYS(rt_sigreturn),
      SCMP_SYS(futex),
      SCMP_SYS(clock_gettime),
      SCMP_SYS(getpid),
      SCMP_SYS(gettid),
      SCMP_SYS(rt_sigprocmask),
      SCMP_SYS(rt_sigaction),
      /* AddressSanitizer's swapcontext interceptor (sanitizer builds) */
      SCMP_SYS(sigaltstack),
  };
  int rc = 0;
  for (size_t i = 0; i < sizeof plain / sizeof *plain && !rc; i++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
  if (!rc)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  if (!rc)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  /* abort()'s raise: only to itself, which is pid 1 in its own pid namespace
   * (without one the pid differs per worker: no tgkill, abort dies of SIGSYS). */
  if (!rc && in_pid_ns)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, 1, 0));
  int mfd = -1;
  if (!rc) {
    mfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
    rc = mfd < 0 ? -errno : seccomp_export_bpf(ctx, mfd);
  }
  seccomp_release(ctx);
  off_t len = rc ? -1 : lseek(mfd, 0, SEEK_END);
  void *buf = len > 0 && len % sizeof(struct sock_filter) == 0 ? malloc((size_t)len) : NULL;
  if (buf && pread(mfd, buf, (size_t)len, 0) != len) {
    free(buf);
    buf = NULL;
  }
  if (mfd >= 0) close(mfd);
  if (!buf)
    return vn_errf(err, "sandbox_seccomp", "building the seccomp filter: %s",
                   rc ? strerror(-rc) : "export failed");
  free(g_prog.filter);
  g_prog.filter = buf;
  g_prog.len = (unsigned short)(len / sizeof(struct sock_filter));
  return 0;
}

int sbx_seccomp_install(vn_err *err) {
  if (!g_prog.filter) return vn_errf(err, "sandbox_seccomp", "no seccomp filter prepared");
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &g_prog, 0, 0))
    return vn_errf(err, "sandbox_seccomp", "installing the seccomp filter: %s", strerror(errno));
  return 0;
}
