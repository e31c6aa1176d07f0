/* worker.h - deterministic Lua states, and the sandboxed processes that run them.
 *
 * Two levels, used by the Lua VM backend:
 *
 * 1. sbx_lua_*: one Lua 5.4 state living entirely in an arena (arena.h) in
 *    the calling process. Deterministic: a fixed string-hash seed (the state
 *    is created on a stack at a fixed address with time() pinned, see
 *    engine.c), only the base, table, string (no dump), math, utf8 and
 *    coroutine libraries, load() for text only, no dofile/loadfile,
 *    collectgarbage("count") only, require() over modules the host gave as
 *    source text, print() collected into the result, os.time() = the
 *    call's timestamp, math.random reseeded by every call, setmetatable
 *    refuses __gc (finalizers run with hooks off, so they could not be
 *    metered). Every call runs under an instruction budget (gas) that pcall
 *    cannot swallow and under the arena's memory cap. One state per process (the arena address is
 *    fixed): the zygote and each worker hold one; tests may hold one.
 *
 * 2. sbx_zygote_* / sbx_worker_*: the node starts one zygote (fork + exec of
 *    its own executable with ADDR_NO_RANDOMIZE, so the layout is the same in
 *    every run); the zygote builds a state with the preloaded Lua library
 *    and forks a worker per Lua process on request. A worker is sandboxed
 *    (new pid/net/ipc/uts/mount namespaces when permitted, rlimits,
 *    no_new_privs, a seccomp allow-list, parent-death signal) and answers
 *    APPLY / CHECKPOINT / RESTORE / CLOSE over a socketpair (framing in
 *    docs/worker.md). A worker that crashes, is killed or overruns its
 *    wall-clock timeout is reported as an error (-1) by the call, never a hang.
 *
 * The executable must call sbx_zygote_main() first thing in main(): when it
 * was started as a zygote it runs the zygote and exits there.
 *
 * Ownership: results (sbx_result) are filled with malloc'd strings the caller
 * frees with sbx_result_free(); config strings are copied; file descriptors
 * passed in stay the caller's (the worker gets its own copy).
 * Threads: a zygote may be shared by threads (spawns are serialised); a
 * worker is used by one thread at a time. */
#ifndef VN_SBX_WORKER_H
#define VN_SBX_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "sandbox/arena.h"

struct lua_State;

#define SBX_GAS_TICK 1000u                   /* instructions per hook tick: gas granularity */
#define SBX_GAS_DEFAULT 100000000ULL         /* per call when sbx_call.gas_limit is 0 */
#define SBX_PAYLOAD_MAX ((size_t)64 << 20)   /* bytes of payload, value or output */
#define SBX_OUTPUT_MAX ((size_t)1 << 20)     /* print() output kept per call */
#define SBX_ERROR_MAX ((size_t)64 << 10)     /* error messages are cut here ("...") */
#define SBX_FIXED_TIME ((int64_t)1700000000) /* what time() says while a state is created */

/* ---- one call ---- */

typedef struct sbx_call {
  /* Global function called with the payload as its one (string) argument;
   * NULL or "" = the payload is a Lua chunk (text) to run. */
  const char *entry;
  const char *chunkname; /* for chunks; NULL = "=apply" */
  const char *payload;
  size_t payload_len;
  uint64_t gas_limit; /* instructions; 0 = SBX_GAS_DEFAULT */
  int64_t timestamp;  /* what os.time() returns during the call */
  uint64_t seed[2];   /* math.randomseed(seed[0], seed[1]) before the call */
  size_t mem_cap;     /* new arena cap before the call; 0 = unchanged */
} sbx_call;

typedef enum sbx_status {
  SBX_OK = 0,
  SBX_ERR_RUNTIME = 1, /* error() or a Lua runtime error (also stack overflow) */
  SBX_ERR_SYNTAX = 2,  /* the chunk did not compile */
  SBX_ERR_GAS = 3,     /* instruction budget exhausted */
  SBX_ERR_MEMORY = 4,  /* the memory cap was hit ("not enough memory") */
} sbx_status;

typedef struct sbx_result {
  sbx_status status;
  uint64_t gas_used;  /* instructions, in units of SBX_GAS_TICK (rounded down) */
  uint64_t footprint; /* arena footprint after the call, bytes */
  int has_value;      /* 0 when the call returned nothing or nil */
  char *value;        /* first return value as text (strings raw), NUL-terminated */
  size_t value_len;
  char *error;  /* message when status != SBX_OK, else NULL */
  char *output; /* what print() wrote, NUL-terminated ("" if none) */
  size_t output_len;
  int output_truncated; /* more than SBX_OUTPUT_MAX was printed */
} sbx_result;

void sbx_result_free(sbx_result *r);
const char *sbx_status_name(sbx_status s); /* "ok", "runtime", "syntax", "gas", "memory" */

/* ---- level 1: an in-process state ---- */

typedef struct sbx_lua sbx_lua;

/* A Lua module the state's require() can load: require("name") (or
 * ".name", the aos spelling) runs src as a text chunk named "@name.lua" with
 * the globals as its environment, passing the name; the value is cached. */
typedef struct sbx_module {
  const char *name;
  const char *src;
  size_t len;
} sbx_module;

typedef struct sbx_lua_cfg {
  uintptr_t base;            /* 0 = SBX_ARENA_BASE */
  size_t reserve;            /* 0 = SBX_ARENA_RESERVE */
  size_t mem_cap;            /* 0 = the reservation */
  const sbx_module *modules; /* copied into the heap (they are part of the image) */
  size_t nmodules;
  const char *preload; /* Lua source run once after the libraries, or NULL */
  size_t preload_len;
  const char *preload_name; /* chunk name; NULL = "=preload" */
  uint64_t preload_gas;     /* 0 = 10 * SBX_GAS_DEFAULT */
  /* Extra host functions, called (protected) after the standard libraries
   * and before the preload. Must be the same function in every process that
   * restores the state (its C functions are pointed to from the heap). Give
   * Lua names as string literals: names passed by pointer (lua_setfield,
   * lua_pushstring) key Lua's string cache by address, and an address that
   * differs between processes makes images differ. */
  void (*open_libs)(struct lua_State *L);
} sbx_lua_cfg;

/* Create the arena and a deterministic state in it; run the preload.
 * Errors: "arena_map", "lua_init" (libraries or preload failed: the message
 * says which, with the Lua error). */
int sbx_lua_new(const sbx_lua_cfg *cfg, sbx_lua **out, vn_err *err);
/* Close nothing inside (the state dies with the arena); unmap the arena. */
void sbx_lua_free(sbx_lua *e);
/* Run one call. Returns 0 with *r filled for every outcome of the script,
 * errors included (r->status); -1 only when the engine has no state (after
 * a failed restore). Free *r with sbx_result_free. */
int sbx_lua_apply(sbx_lua *e, const sbx_call *c, sbx_result *r, vn_err *err);
/* Write the state's image to fd (see sbx_arena_checkpoint). */
int sbx_lua_checkpoint(sbx_lua *e, int fd, uint64_t tag, sbx_image_info *info, vn_err *err);
/* Replace e's state by an image (e != NULL), or map an image into a new
 * engine (e == NULL, *out receives it; the process must not have an arena at
 * that address). On error "arena_lost" e has no state any more. */
int sbx_lua_restore(sbx_lua *e, int fd, unsigned flags, sbx_lua **out, sbx_image_info *info,
                    vn_err *err);
struct lua_State *sbx_lua_state(sbx_lua *e);
sbx_arena *sbx_lua_arena(sbx_lua *e);

/* Make this process's address layout the one workers have: when
 * ADDR_NO_RANDOMIZE is not set, set it (and an RLIMIT_STACK that keeps the
 * standard mmap layout) and re-exec /proc/self/exe with argv. Returns 0 when
 * already set; does not return when it re-execs; -1 on failure. For test
 * programs and tools that create states in-process; the zygote does this by
 * itself. */
int sbx_norandomize_reexec(char **argv, vn_err *err);

/* ---- level 2: zygote and workers ---- */

/* Namespaces a worker gets (tried in this order; see sbx_zygote_note()). */
#define SBX_NS_PID 0x1u
#define SBX_NS_NET 0x2u
#define SBX_NS_IPC 0x4u
#define SBX_NS_UTS 0x8u
#define SBX_NS_MNT 0x10u
#define SBX_NS_ALL 0x1fu

typedef struct sbx_zygote_cfg {
  const char *exe;           /* executable to start as zygote; NULL = /proc/self/exe */
  const sbx_module *modules; /* modules for require() (the AO library's files) */
  size_t nmodules;
  const char *preload; /* Lua source the zygote runs once (e.g. require "process") */
  size_t preload_len;
  const char *preload_name; /* NULL = "=preload" */
  uint64_t preload_gas;     /* 0 = 10 * SBX_GAS_DEFAULT */
  size_t mem_cap;           /* per worker; 0 = 256 MiB */
  size_t reserve;           /* 0 = SBX_ARENA_RESERVE */
  unsigned ns;              /* SBX_NS_* to try; 0 = none. Start from SBX_NS_ALL. */
  int no_seccomp;           /* 1 = no seccomp filter (debugging only) */
  int pool;                 /* workers kept cloned ahead; 0 = 2, -1 = none, max 16 */
  int timeout_ms;           /* wall clock per apply/checkpoint/restore; 0 = 30000 */
} sbx_zygote_cfg;

/* Hooks the executable gives sbx_zygote_main (same in every run). */
typedef struct sbx_hooks {
  void (*open_libs)(struct lua_State *L); /* extra host C functions (tests) */
} sbx_hooks;

/* First thing in main(): if argv says this process is a zygote, run it and
 * exit (never returns); otherwise return 0 at once. hooks may be NULL. */
int sbx_zygote_main(int argc, char **argv, const sbx_hooks *hooks);

typedef struct sbx_zygote sbx_zygote;
typedef struct sbx_worker sbx_worker;

/* Start a zygote (fork + exec, then INIT with cfg); waits until it has built
 * its state. Errors: "zygote_start" with the zygote's own error when it
 * reported one (e.g. a preload error). */
int sbx_zygote_start(const sbx_zygote_cfg *cfg, sbx_zygote **out, vn_err *err);
/* Close the channel and reap the zygote. Its workers die with it
 * (parent-death signal): close workers first. */
void sbx_zygote_stop(sbx_zygote *z);
pid_t sbx_zygote_pid(const sbx_zygote *z);
/* What the sandbox could not do here (e.g. "namespaces unavailable: EPERM,
 * workers run without them"), or "" when everything was applied. */
const char *sbx_zygote_note(const sbx_zygote *z);

/* The zygote's (= its workers') layout: to check an image header read with
 * sbx_image_read() before handing it to a worker (sbx_image_fits()). */
const sbx_layout *sbx_zygote_layout(const sbx_zygote *z);

/* Fork a worker: a copy of the zygote's state, sandboxed, ready for calls.
 * Errors: "worker_spawn". */
int sbx_worker_spawn(sbx_zygote *z, sbx_worker **out, vn_err *err);
/* Apply one call (see sbx_lua_apply). -1 when the worker is gone: it
 * crashed, was killed (seccomp: "worker_seccomp"; signal or exit:
 * "worker_crashed"), or overran the timeout ("worker_timeout", the worker is
 * killed). After -1 the worker is dead: close it and spawn another. */
int sbx_worker_apply(sbx_worker *w, const sbx_call *c, sbx_result *r, vn_err *err);
/* Write the worker's image to fd (a regular file, opened read-write, not
 * O_APPEND; the caller fsyncs). Errors as apply, plus "image_io". */
int sbx_worker_checkpoint(sbx_worker *w, int fd, uint64_t tag, sbx_image_info *info, vn_err *err);
/* Replace the worker's state by the image in fd (flags: SBX_RESTORE_VERIFY).
 * A refused image ("image_*" codes) leaves the worker as it was. */
int sbx_worker_restore(sbx_worker *w, int fd, unsigned flags, sbx_image_info *info, vn_err *err);
/* Ask the worker to exit, reap it, free w. Also for dead workers. */
void sbx_worker_close(sbx_worker *w);
/* Wall-clock limit for each later request to this worker (ms; 0 = the
 * zygote's timeout_ms). */
void sbx_worker_set_timeout(sbx_worker *w, int timeout_ms);
pid_t sbx_worker_pid(const sbx_worker *w); /* in the node's pid namespace */
int sbx_worker_alive(const sbx_worker *w);
/* 1 when the worker process has exited (checked now, without a request):
 * it died while idle, not because of a call. */
int sbx_worker_exited(const sbx_worker *w);
/* The namespaces (SBX_NS_*) and whether seccomp is on, as the worker reported. */
unsigned sbx_worker_ns(const sbx_worker *w);
int sbx_worker_seccomp(const sbx_worker *w);

#endif
