/* seccomp.c - the worker's system-call allow-list (libseccomp).
 *
 * A worker only moves frames over its socket, allocates memory and writes or
 * maps images through fds it was given. The list below is what that needs
 * (found with strace on the worker loop: apply, checkpoint, restore, close,
 * plus abort() for Lua panics). Anything else - open, socket, connect,
 * execve, clone, kill, ptrace, ... - kills the whole worker (SIGSYS), which
 * the node reports as "worker_seccomp". Memory can never be made executable:
 * mmap and mprotect are allowed only without PROT_EXEC. */
#include <errno.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox/internal.h"

int sbx_seccomp_apply(vn_err *err) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (!ctx) return vn_errf(err, "sandbox_seccomp", "seccomp_init failed");
  static const int plain[] = {
      /* the channel */
      SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(close),
      /* memory: malloc and the arena */
      SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
      /* images, through fds the node passed */
      SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(ftruncate),
      /* process basics */
      SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(futex),
      SCMP_SYS(clock_gettime), SCMP_SYS(getpid), SCMP_SYS(gettid),
      /* abort() after a Lua panic */
      SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
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
  if (!rc) /* signals only to itself (abort's raise) */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                          SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
  if (!rc) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc)
    return vn_errf(err, "sandbox_seccomp", "loading the seccomp filter: %s", strerror(-rc));
  return 0;
}
