/* internal.h - what the sandbox's files share: the wire format (wire.c), the
 * zygote and worker processes (zygote.c), the seccomp filter (seccomp.c).
 * Not for other modules: they use worker.h. The format is in docs/worker.md. */
#ifndef VN_SBX_INTERNAL_H
#define VN_SBX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "sandbox/worker.h"

/* Frame types. A frame is: u32 length (of type + body, little-endian), u8
 * type, body. At most one file descriptor rides along (SCM_RIGHTS on the
 * frame's first byte). */
enum {
  /* node -> zygote */
  SBX_Z_INIT = 1,  /* body: zygote config; reply READY or ERR */
  SBX_Z_SPAWN = 2, /* no body; reply SPAWNED or ERR */
  SBX_Z_WAIT = 3,  /* u64 pid, u32 timeout ms; reply STATUS */
  /* zygote -> node */
  SBX_Z_READY = 17,   /* u64 footprint, u32 ns flags, str note, str exe id, str lua id,
                         u64 exe base, u64 lua base */
  SBX_Z_SPAWNED = 18, /* u64 pid; fd: the node's end of the worker's channel */
  SBX_Z_STATUS = 19,  /* u32 known (0/1), i32 wait status */
  /* node -> worker */
  SBX_W_APPLY = 33,      /* call (see encode_call) */
  SBX_W_CHECKPOINT = 34, /* u64 tag; fd: the image file */
  SBX_W_RESTORE = 35,    /* u32 flags; fd: the image file */
  SBX_W_CLOSE = 36,      /* no reply: the worker exits 0 */
  /* worker -> node */
  SBX_W_HELLO = 48,  /* u32 ns flags, u32 sandbox flags, str note: the worker is ready */
  SBX_W_RESULT = 49, /* result (see encode_result) */
  SBX_W_IMAGE = 50,  /* image info (see encode_info) */
  /* either way, as a reply */
  SBX_ERR = 127, /* str code, str message */
};

#define SBX_FRAME_MAX ((size_t)80 << 20) /* type + body; payloads up to 64 MiB */
#define SBX_ZYGOTE_ARG "--sbx-zygote"    /* argv[1] of an exec'd zygote; argv[2] = node pid */
#define SBX_ZYGOTE_FD 3                  /* the channel fd of an exec'd zygote */
#define SBX_WORKER_FD 3                  /* the channel fd inside a worker */

/* A growing byte buffer for frame bodies; `bad` sticks after a failed malloc. */
typedef struct sbx_buf {
  uint8_t *p;
  size_t len, cap;
  int bad;
} sbx_buf;

void sbx_buf_u32(sbx_buf *b, uint32_t v);
void sbx_buf_u64(sbx_buf *b, uint64_t v);
void sbx_buf_bytes(sbx_buf *b, const void *s, size_t n); /* u32 length + bytes */
void sbx_buf_str(sbx_buf *b, const char *s);             /* NULL as "" */
void sbx_buf_raw(sbx_buf *b, const void *s, size_t n);   /* no length */
void sbx_buf_free(sbx_buf *b);

/* A reader over a received body; `bad` sticks after reading past the end. */
typedef struct sbx_rd {
  const uint8_t *p;
  size_t left;
  int bad;
} sbx_rd;

uint32_t sbx_rd_u32(sbx_rd *r);
uint64_t sbx_rd_u64(sbx_rd *r);
/* A pointer into the body (not NUL-terminated) and its length. */
const char *sbx_rd_bytes(sbx_rd *r, size_t *n);
/* A malloc'd NUL-terminated copy ("" for an empty field); NULL when bad. */
char *sbx_rd_strdup(sbx_rd *r);
void sbx_rd_raw(sbx_rd *r, void *out, size_t n);

/* Send one frame; fd_pass >= 0 is passed along (not closed). Errors:
 * "worker_io" (includes EPIPE when the peer is gone). */
int sbx_send(int fd, uint8_t type, const void *body, size_t len, int fd_pass, vn_err *err);
/* Receive one frame. timeout_ms < 0 waits forever; the deadline is for the
 * whole frame. *body is malloc'd (one NUL past the end), *fd_got is a
 * received fd or -1 (pass NULL to close any). Errors: "worker_eof" (peer
 * closed before a frame began), "worker_timeout", "worker_io". */
int sbx_recv(int fd, int timeout_ms, uint8_t *type, uint8_t **body, size_t *len, int *fd_got,
             vn_err *err);
/* Reply with an ERR frame carrying err's code and message. */
void sbx_send_err(int fd, const vn_err *err);
/* Decode an ERR body into err; returns -1. */
int sbx_err_from_body(const uint8_t *body, size_t len, vn_err *err);

/* Calls, results and image infos on the wire. */
void sbx_encode_call(sbx_buf *b, const sbx_call *c);
/* Fills c with pointers into the body (valid while it is). */
int sbx_decode_call(const uint8_t *body, size_t len, sbx_call *c);
void sbx_encode_result(sbx_buf *b, const sbx_result *r);
int sbx_decode_result(const uint8_t *body, size_t len, sbx_result *r);
void sbx_encode_info(sbx_buf *b, const sbx_image_info *i);
int sbx_decode_info(const uint8_t *body, size_t len, sbx_image_info *i);

/* The zygote's configuration as sent in INIT. */
void sbx_encode_zcfg(sbx_buf *b, const sbx_zygote_cfg *c);
/* Strings are malloc'd into *c; free with sbx_zcfg_free. */
int sbx_decode_zcfg(const uint8_t *body, size_t len, sbx_zygote_cfg *c);
void sbx_zcfg_free(sbx_zygote_cfg *c);

/* Layout (engine.c): whether ADDR_NO_RANDOMIZE and a finite stack limit are
 * in effect; set both for the next exec (async-signal-safe calls only). */
int sbx_layout_fixed(void);
int sbx_fix_layout_before_exec(void);

/* The worker's seccomp allow-list (seccomp.c): compiled once in the zygote
 * (in_pid_ns: workers are pid 1 of their own pid namespace), installed by
 * each worker after no_new_privs. After that the only system calls are the
 * ones a worker's loop needs; anything else kills the process (SIGSYS).
 * Errors: "sandbox_seccomp". */
int sbx_seccomp_prepare(int in_pid_ns, vn_err *err);
int sbx_seccomp_install(vn_err *err);

/* Exit status of a worker after a Lua panic (an error outside any pcall). */
#define SBX_EXIT_PANIC 86
/* Engine (engine.c): a panic in this process _exits with SBX_EXIT_PANIC
 * instead of abort() (workers: abort's raise may be forbidden). */
void sbx_engine_worker_mode(void);
void sbx_engine_prefault(sbx_lua *e); /* break COW on the heap and stack now */
void sbx_engine_prefault_prepare(void); /* in the zygote, before forking */

#endif
