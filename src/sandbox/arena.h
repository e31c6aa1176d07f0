/* arena.h - one memory region at a fixed address that holds a whole Lua state.
 *
 * Why: a checkpoint of a Lua process is the arena's bytes. Every allocation
 * the Lua state makes (and the allocator's own metadata: free lists, top,
 * statistics, the root pointer) lives in the arena, which is mapped at the
 * same virtual address in every worker. So the bytes written by
 * sbx_arena_checkpoint() and mapped back by sbx_arena_restore() (MAP_PRIVATE,
 * lazy, O(1) in the image size) are the state itself, pointers included.
 * Pointers from the heap into code (C functions of liblua and of the
 * executable, liblua's static data) stay valid only in a process with the
 * same layout: the same executable and liblua (build ids) loaded at the same
 * addresses (ADDR_NO_RANDOMIZE). The image header records both and restore
 * refuses an image that does not match, with a reason.
 *
 * The allocator (sbx_arena_alloc) is a lua_Alloc: size classes with LIFO free
 * lists for blocks up to 32 KiB, page-granular "large" blocks in an
 * address-ordered free list with coalescing, and a bump pointer ("top").
 * Blocks carry no header: Lua passes the old size on free and realloc.
 * It is deterministic: the same sequence of calls gives the same addresses
 * and the same bytes, and every byte at or above top is zero. Together these
 * make the image a pure function of the allocation history, so two replays of
 * the same log produce byte-identical images (same sha256).
 *
 * Limits: one arena per base address per process (the address is fixed);
 * not thread-safe (a Lua state is used by one thread); x86_64 Linux.
 * The memory cap bounds top - base (the footprint, fragmentation included):
 * an allocation that would cross it returns NULL, which Lua turns into a
 * "not enough memory" error. Shrinking never fails (lua_Alloc contract). */
#ifndef VN_SBX_ARENA_H
#define VN_SBX_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Default placement: far below the mmap area that ADDR_NO_RANDOMIZE gives on
 * x86_64 (libraries load under 0x7ffff7fff000), far above the heap. */
#define SBX_ARENA_BASE ((uintptr_t)0x7e0000000000ULL)
#define SBX_ARENA_RESERVE ((size_t)4 << 30) /* 4 GiB of address space, NORESERVE */
#define SBX_PAGE 4096u

/* The arena is its own first page: an sbx_arena * is the base address. */
typedef struct sbx_arena sbx_arena;

typedef struct sbx_arena_stats {
  size_t cap;        /* memory limit on the footprint, bytes */
  size_t footprint;  /* top - base: what an image holds before page rounding */
  size_t peak;       /* highest footprint ever */
  size_t live;       /* bytes in live blocks (size-class rounded) */
  size_t requested;  /* bytes asked for by live allocations (what Lua counts) */
  size_t free_small; /* bytes in small-class free lists */
  size_t free_large; /* bytes in the large free list */
  size_t lost;       /* bytes leaked by in-place shrinks at the cap (rare) */
  uint64_t allocs, frees, failed;
} sbx_arena_stats;

/* Map a new empty arena at base (MAP_FIXED_NOREPLACE: fails if anything is
 * mapped there) reserving `reserve` bytes of address space (read-write,
 * MAP_NORESERVE: pages cost memory only when touched), with a memory cap
 * (0 = the whole reservation). Returns NULL with err "arena_map" on failure. */
sbx_arena *sbx_arena_create(uintptr_t base, size_t reserve, size_t cap, vn_err *err);
/* Unmap the whole reservation. Every pointer into the arena dies with it. */
void sbx_arena_destroy(sbx_arena *a);

/* The lua_Alloc: ud is the sbx_arena *. ptr == NULL: allocate nsize bytes
 * (osize is a type tag, ignored). nsize == 0: free ptr (osize bytes). Else
 * resize from osize to nsize. Returns NULL only when an allocation or growth
 * would exceed the cap (or the reservation). Blocks are 16-byte aligned. */
void *sbx_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* One pointer stored in the arena header, for finding the state again after
 * a restore (the lua_State *). */
void sbx_arena_set_root(sbx_arena *a, void *root);
void *sbx_arena_root(const sbx_arena *a);
/* Change the cap (may be below the current footprint: later growth fails). */
void sbx_arena_set_cap(sbx_arena *a, size_t cap);
void sbx_arena_stats_get(const sbx_arena *a, sbx_arena_stats *st);
uintptr_t sbx_arena_base(const sbx_arena *a);
/* Check the allocator's invariants (free lists inside the arena, sorted and
 * coalesced large list, zero bytes above top). 0 or -1 with a reason in err
 * ("arena_corrupt"). O(heap): for tests and after restore in debug runs. */
int sbx_arena_check(const sbx_arena *a, vn_err *err);

/* ---- images (checkpoints) ----
 *
 * File layout: a 4096-byte header (struct below, rest zero), then the image:
 * the arena's bytes [base, base + image_len), image_len = footprint rounded
 * up to a page. The image starts on a page boundary so restore can mmap it.
 * sha256 covers the header bytes before the sha256 field, then the image. */
#define SBX_IMAGE_MAGIC "VNARENA"
#define SBX_IMAGE_VERSION 1u
#define SBX_IMAGE_HDR_SIZE 4096u
#define SBX_BUILD_ID_MAX 40

typedef struct sbx_build_id {
  uint8_t len; /* 0 when the object has no .note.gnu.build-id */
  uint8_t id[SBX_BUILD_ID_MAX];
} sbx_build_id;

/* The identity and placement of the code a heap image points into. */
typedef struct sbx_layout {
  sbx_build_id exe;            /* the running executable (/proc/self/exe) */
  sbx_build_id lua;            /* the object that defines lua_newstate (liblua5.4.so) */
  uint64_t exe_base, lua_base; /* their load addresses */
} sbx_layout;

/* What an image header says (all fields host-endian, x86_64 only). */
typedef struct sbx_image_info {
  uint32_t version;
  uint64_t base;      /* arena base the image must be mapped at */
  uint64_t image_len; /* bytes of arena image (page multiple) */
  uint64_t footprint; /* top - base when written */
  uint64_t cap;       /* the arena's cap when written */
  uint64_t tag;       /* the caller's number (the node uses the nonce) */
  sbx_layout layout;
  uint8_t sha256[32];
  uint64_t file_len; /* SBX_IMAGE_HDR_SIZE + image_len */
} sbx_image_info;

/* The current process's layout (computed once, then cached; the first call
 * must happen before a seccomp filter forbids nothing it needs - it uses no
 * syscalls, only dl_iterate_phdr). */
const sbx_layout *sbx_layout_self(void);
/* Lowercase hex of a build id into out (2*len+1 bytes). */
void sbx_build_id_hex(const sbx_build_id *b, char *out, size_t outlen);

/* Write the arena's image to fd (a regular file opened for writing, not
 * O_APPEND; written with pwrite from offset 0, then truncated to the
 * image's length; not fsync'd: the caller decides durability). Must run between two Lua calls
 * (no C frame of the state active). Fills *info when not NULL.
 * Errors: "image_io". */
int sbx_arena_checkpoint(sbx_arena *a, int fd, uint64_t tag, sbx_image_info *info, vn_err *err);

/* Read an image's header and check it only for consistency (magic,
 * version, lengths against the file size): for a process whose own layout
 * is not the workers' (the node). Errors: "image_io", "image_corrupt",
 * "image_version". */
int sbx_image_read(int fd, sbx_image_info *info, vn_err *err);
/* Whether an image (its header's info) can be mapped into a process with
 * layout l (build ids, then load addresses). Errors: "image_build_mismatch",
 * "image_layout_mismatch", with both ids or addresses in the message. */
int sbx_image_fits(const sbx_image_info *info, const sbx_layout *l, vn_err *err);

/* Read and check an image's header against this process: magic, version,
 * lengths against the file size, build ids and load addresses. With verify,
 * also hash the image (reads the whole file). Does not map anything.
 * Errors: "image_io", "image_corrupt" (bad magic/lengths/hash),
 * "image_version", "image_build_mismatch" (other executable or liblua),
 * "image_layout_mismatch" (same build, other addresses: ASLR on?). */
int sbx_image_check(int fd, int verify, sbx_image_info *info, vn_err *err);

#define SBX_RESTORE_VERIFY 1u /* hash the image before mapping it (O(size)) */

/* Map an image back. `into` is an arena at the image's base in this process
 * whose contents are replaced, or NULL to map a new reservation of `reserve`
 * bytes (0 = SBX_ARENA_RESERVE) at the image's base. The image's pages are
 * mapped MAP_PRIVATE from the file (copy-on-write, read lazily) and the rest
 * of the reservation becomes fresh zero pages. The file must not change while
 * mapped (images are immutable: write a new file, then rename). Returns the
 * arena (== base) or NULL. On a failed check nothing is changed; only when
 * mapping itself fails after the checks passed (code "arena_lost") has the
 * arena been unmapped, `into` included. */
sbx_arena *sbx_arena_restore(sbx_arena *into, size_t reserve, int fd, unsigned flags,
                             sbx_image_info *info, vn_err *err);

#endif
