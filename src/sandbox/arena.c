/* arena.c - the fixed-address arena: allocator, images, build ids.
 *
 * Layout of the reservation:
 *
 *   base                     base+4096              top            base+reserve
 *   | struct sbx_arena (hdr) | blocks ... free ...  | zero bytes ... |
 *
 * Small blocks (<= 32 KiB) are rounded to one of NCLASS size classes and
 * recycled through per-class LIFO lists whose links live in the free blocks.
 * Large blocks are rounded to pages; free ones sit in one list ordered by
 * address, merged with their neighbours, and a free block that reaches top
 * lowers top instead. Everything at or above top is kept zero (lowering top
 * zeroes what it gives back), so the image is determined by the allocation
 * history alone. */
#include "sandbox/arena.h"

#include <errno.h>
#include <link.h>
#include <lua.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARENA_MAGIC 0x31414e4552414e56ULL /* "VNARENA1" little-endian */
#define ARENA_VERSION 1u
#define NCLASS 40
#define SMALL_MAX 32768u
#define ALIGN 16u
#define ZERO_BY_MMAP (64u * 1024) /* give back whole pages above this size */

typedef struct lfree {
  size_t size; /* bytes, multiple of SBX_PAGE */
  struct lfree *next;
} lfree;

struct sbx_arena {
  uint64_t magic;
  uint32_t version, pad_;
  uintptr_t base;
  size_t reserve, cap;
  uintptr_t top;
  size_t peak; /* highest footprint */
  void *root;
  void *small[NCLASS];
  lfree *large; /* ordered by address, coalesced, none ends at top */
  size_t live, requested, free_small, free_large, lost;
  uint64_t allocs, frees, failed;
};

_Static_assert(sizeof(struct sbx_arena) <= SBX_PAGE, "arena header fits its page");

static inline uintptr_t heap_start(const sbx_arena *a) {
  return a->base + SBX_PAGE;
}

static inline size_t round_up(size_t n, size_t g) {
  return (n + g - 1) / g * g;
}

/* ---- size classes: 16..128 by 16, then 4 steps per power of two ---- */

static unsigned class_of(size_t n) {
  if (n <= 128) return n == 0 ? 0 : (unsigned)((n - 1) >> 4);
  size_t m = n - 1;
  unsigned k = 63u - (unsigned)__builtin_clzll(m); /* 2^k <= m < 2^(k+1) */
  return 8 + (k - 7) * 4 + (unsigned)((m - ((size_t)1 << k)) >> (k - 2));
}

static size_t class_size(unsigned c) {
  if (c < 8) return (size_t)(c + 1) * 16;
  unsigned j = c - 8, k = 7 + j / 4;
  return ((size_t)1 << k) + (size_t)(j % 4 + 1) * ((size_t)1 << (k - 2));
}

/* The bytes a request of n occupies. */
static inline size_t rounded(size_t n) {
  return n <= SMALL_MAX ? class_size(class_of(n)) : round_up(n, SBX_PAGE);
}

/* ---- raw space ---- */

static void *bump(sbx_arena *a, size_t sz) {
  if (sz > a->reserve || a->top - a->base > a->reserve - sz ||
      a->top - a->base > (a->cap > sz ? a->cap - sz : 0))
    return NULL;
  void *p = (void *)a->top;
  a->top += sz;
  if (a->top - a->base > a->peak) a->peak = a->top - a->base;
  return p;
}

/* Make [p, p+n) zero again. Whole pages are replaced by fresh anonymous
 * ones (gives the memory back; also right for pages mapped from an image,
 * where MADV_DONTNEED would bring the file's bytes back). */
static void zero_range(uintptr_t p, size_t n) {
  if (n >= ZERO_BY_MMAP) {
    uintptr_t lo = round_up(p, SBX_PAGE), hi = (p + n) & ~(uintptr_t)(SBX_PAGE - 1);
    if (hi > lo &&
        mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) != MAP_FAILED) {
      memset((void *)p, 0, lo - p);
      memset((void *)hi, 0, p + n - hi);
      return;
    }
  }
  memset((void *)p, 0, n);
}

/* ---- large blocks ---- */

static void *large_take(sbx_arena *a, size_t sz) {
  lfree **best = NULL;
  for (lfree **pp = &a->large; *pp; pp = &(*pp)->next)
    if ((*pp)->size >= sz && (!best || (*pp)->size < (*best)->size)) best = pp;
  if (!best) return bump(a, sz);
  lfree *b = *best;
  a->free_large -= sz;
  if (b->size == sz) {
    *best = b->next;
  } else {
    lfree *rest = (lfree *)((char *)b + sz);
    rest->size = b->size - sz;
    rest->next = b->next;
    *best = rest;
  }
  return b;
}

/* Give [p, p+sz) back: to top when it ends there, else into the ordered list. */
static void large_give(sbx_arena *a, void *p, size_t sz) {
  uintptr_t u = (uintptr_t)p;
  if (u + sz == a->top) {
    a->top = u;
    size_t zn = sz;
    /* The last free block may now end at top: absorb it too. */
    lfree **pp = &a->large, *last = NULL, **lastp = NULL;
    for (; *pp; pp = &(*pp)->next) last = *pp, lastp = pp;
    if (last && (uintptr_t)last + last->size == a->top) {
      a->top = (uintptr_t)last;
      a->free_large -= last->size;
      zn += last->size;
      *lastp = NULL;
    }
    zero_range(a->top, zn);
    return;
  }
  lfree **pp = &a->large, *prev = NULL;
  while (*pp && (uintptr_t)*pp < u) prev = *pp, pp = &(*pp)->next;
  lfree *next = *pp, *b = p;
  a->free_large += sz;
  if (prev && (uintptr_t)prev + prev->size == u) {
    prev->size += sz;
    b = prev;
  } else {
    b->size = sz;
    b->next = next;
    *pp = b;
  }
  if (next && (uintptr_t)b + b->size == (uintptr_t)next) {
    b->size += next->size;
    b->next = next->next;
  }
}

/* Extend the large block [p, p+have) to `want` bytes in place, using a free
 * block that starts right after it. */
static int large_grow_in_place(sbx_arena *a, void *p, size_t have, size_t want) {
  uintptr_t end = (uintptr_t)p + have;
  for (lfree **pp = &a->large; *pp && (uintptr_t)*pp <= end; pp = &(*pp)->next) {
    lfree *b = *pp;
    if ((uintptr_t)b != end) continue;
    size_t need = want - have;
    if (b->size < need) return 0;
    a->free_large -= need;
    if (b->size == need) {
      *pp = b->next;
    } else {
      lfree *rest = (lfree *)((char *)b + need);
      rest->size = b->size - need;
      rest->next = b->next;
      *pp = rest;
    }
    return 1;
  }
  return 0;
}

/* ---- the lua_Alloc ---- */

static void *block_new(sbx_arena *a, size_t n) {
  void *p;
  size_t r = rounded(n);
  if (n <= SMALL_MAX) {
    unsigned c = class_of(n);
    p = a->small[c];
    if (p) {
      a->small[c] = *(void **)p;
      a->free_small -= r;
    } else {
      p = bump(a, r);
    }
  } else {
    p = large_take(a, r);
  }
  if (!p) {
    a->failed++;
    return NULL;
  }
  a->allocs++;
  a->live += r;
  a->requested += n;
  return p;
}

static void block_free(sbx_arena *a, void *p, size_t n) {
  size_t r = rounded(n);
  a->frees++;
  a->live -= r;
  a->requested -= n;
  if (n <= SMALL_MAX) {
    unsigned c = class_of(n);
    *(void **)p = a->small[c];
    a->small[c] = p;
    a->free_small += r;
  } else {
    large_give(a, p, r);
  }
}

void *sbx_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sbx_arena *a = ud;
  if (!ptr) return nsize ? block_new(a, nsize) : NULL;
  if (nsize == 0) {
    block_free(a, ptr, osize);
    return NULL;
  }
  size_t ro = rounded(osize), rn = rounded(nsize);
  if (ro == rn) {
    a->requested += nsize - osize; /* wraps correctly when shrinking */
    return ptr;
  }
  if (osize > SMALL_MAX && nsize > SMALL_MAX) {
    uintptr_t u = (uintptr_t)ptr;
    int ok = 0;
    if (u + ro == a->top) { /* the last block: move top */
      if (rn < ro) {
        a->top = u + rn;
        zero_range(u + rn, ro - rn);
        ok = 1;
      } else if (bump(a, rn - ro)) {
        ok = 1;
      }
    } else if (rn < ro) {
      large_give(a, (char *)ptr + rn, ro - rn);
      ok = 1;
    } else {
      ok = large_grow_in_place(a, ptr, ro, rn);
    }
    if (ok) {
      a->live += rn - ro;
      a->requested += nsize - osize;
      return ptr;
    }
  }
  void *q = block_new(a, nsize);
  if (!q) {
    if (nsize > osize) return NULL;
    /* Shrinking must not fail: keep the block, now known by its new size.
     * The difference is lost until the arena is rebuilt. */
    a->failed--; /* not a failure Lua sees */
    a->lost += ro - rn;
    a->live -= ro - rn;
    a->requested -= osize - nsize;
    return ptr;
  }
  memcpy(q, ptr, osize < nsize ? osize : nsize);
  block_free(a, ptr, osize);
  return q;
}

/* ---- create / destroy / accessors ---- */

static void *map_reserve(uintptr_t base, size_t reserve, int flags) {
  return mmap((void *)base, reserve, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0);
}

sbx_arena *sbx_arena_create(uintptr_t base, size_t reserve, size_t cap, vn_err *err) {
  if (!base || base % SBX_PAGE || reserve < 2 * SBX_PAGE || reserve % SBX_PAGE) {
    vn_errf(err, "arena_map", "arena base %#lx / size %zu not page aligned", (unsigned long)base,
            reserve);
    return NULL;
  }
  void *m = map_reserve(base, reserve, MAP_FIXED_NOREPLACE);
  if (m == MAP_FAILED || (uintptr_t)m != base) {
    int e = errno;
    if (m != MAP_FAILED) munmap(m, reserve);
    vn_errf(err, "arena_map", "cannot map the arena at %#lx (%zu MiB): %s", (unsigned long)base,
            reserve >> 20, m == MAP_FAILED ? strerror(e) : "kernel placed it elsewhere");
    return NULL;
  }
  sbx_arena *a = m;
  a->magic = ARENA_MAGIC;
  a->version = ARENA_VERSION;
  a->base = base;
  a->reserve = reserve;
  a->cap = cap && cap < reserve ? cap : reserve;
  a->top = heap_start(a);
  a->peak = a->top - base;
  return a;
}

void sbx_arena_destroy(sbx_arena *a) {
  if (a) munmap((void *)a->base, a->reserve);
}

void sbx_arena_set_root(sbx_arena *a, void *root) {
  a->root = root;
}
void *sbx_arena_root(const sbx_arena *a) {
  return a->root;
}
uintptr_t sbx_arena_base(const sbx_arena *a) {
  return a->base;
}
void sbx_arena_set_cap(sbx_arena *a, size_t cap) {
  a->cap = cap && cap < a->reserve ? cap : a->reserve;
}

void sbx_arena_stats_get(const sbx_arena *a, sbx_arena_stats *st) {
  st->cap = a->cap;
  st->footprint = a->top - a->base;
  st->peak = a->peak;
  st->live = a->live;
  st->requested = a->requested;
  st->free_small = a->free_small;
  st->free_large = a->free_large;
  st->lost = a->lost;
  st->allocs = a->allocs;
  st->frees = a->frees;
  st->failed = a->failed;
}

int sbx_arena_check(const sbx_arena *a, vn_err *err) {
  if (a->magic != ARENA_MAGIC || a->base != (uintptr_t)a)
    return vn_errf(err, "arena_corrupt", "arena header magic/base wrong");
  uintptr_t lo = heap_start(a), hi = a->top;
  if (hi < lo || hi - a->base > a->reserve || hi % ALIGN)
    return vn_errf(err, "arena_corrupt", "top %#lx outside the heap", (unsigned long)hi);
  size_t limit = (hi - lo) / 16 + 1, fs = 0, fl = 0;
  for (unsigned c = 0; c < NCLASS; c++) {
    size_t n = 0, sz = class_size(c);
    for (void *p = a->small[c]; p; p = *(void **)p) {
      uintptr_t u = (uintptr_t)p;
      if (u < lo || u + sz > hi || u % ALIGN || ++n > limit)
        return vn_errf(err, "arena_corrupt", "class %u free list: bad block %#lx", c,
                       (unsigned long)u);
      fs += sz;
    }
  }
  uintptr_t prev_end = 0;
  for (lfree *b = a->large; b; b = b->next) {
    uintptr_t u = (uintptr_t)b;
    if (u < lo || u + b->size > hi || b->size % SBX_PAGE || !b->size || u % ALIGN)
      return vn_errf(err, "arena_corrupt", "large free block %#lx+%zu bad", (unsigned long)u,
                     b->size);
    if (prev_end && u <= prev_end)
      return vn_errf(err, "arena_corrupt", "large free list not ordered/coalesced at %#lx",
                     (unsigned long)u);
    if (u + b->size == hi) return vn_errf(err, "arena_corrupt", "large free block touches top");
    prev_end = u + b->size;
    fl += b->size;
  }
  if (fs != a->free_small || fl != a->free_large)
    return vn_errf(err, "arena_corrupt", "free byte counts %zu/%zu, lists hold %zu/%zu",
                   a->free_small, a->free_large, fs, fl);
  if (a->live + fs + fl + a->lost != hi - lo)
    return vn_errf(err, "arena_corrupt", "live %zu + free %zu + lost %zu != heap %zu", a->live,
                   fs + fl, a->lost, (size_t)(hi - lo));
  uintptr_t end = a->base + round_up(a->peak, SBX_PAGE);
  for (const uint64_t *q = (const uint64_t *)hi; (uintptr_t)q < end; q++)
    if (*q)
      return vn_errf(err, "arena_corrupt", "non-zero byte above top at %#lx", (unsigned long)q);
  return 0;
}

/* ---- build ids and layout ---- */

static sbx_layout g_layout;
static pthread_once_t g_layout_once = PTHREAD_ONCE_INIT;

static void note_build_id(struct dl_phdr_info *info, sbx_build_id *out) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
      const char *name = p + sizeof *n;
      const uint8_t *desc = (const uint8_t *)(name + round_up(n->n_namesz, 4));
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
          n->n_descsz <= SBX_BUILD_ID_MAX) {
        out->len = (uint8_t)n->n_descsz;
        memcpy(out->id, desc, n->n_descsz);
        return;
      }
      p = (const char *)desc + round_up(n->n_descsz, 4);
    }
  }
}

static int contains(struct dl_phdr_info *info, uintptr_t addr) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz) return 1;
  }
  return 0;
}

static int layout_cb(struct dl_phdr_info *info, size_t size, void *ctx) {
  int *first = ctx;
  if (*first) { /* the first object is the executable */
    *first = 0;
    note_build_id(info, &g_layout.exe);
    g_layout.exe_base = info->dlpi_addr;
  }
  if (contains(info, (uintptr_t)&lua_newstate)) {
    note_build_id(info, &g_layout.lua);
    g_layout.lua_base = info->dlpi_addr;
  }
  return 0;
}

static void layout_init(void) {
  int first = 1;
  dl_iterate_phdr(layout_cb, &first);
}

const sbx_layout *sbx_layout_self(void) {
  pthread_once(&g_layout_once, layout_init);
  return &g_layout;
}

void sbx_build_id_hex(const sbx_build_id *b, char *out, size_t outlen) {
  size_t k = 0;
  for (unsigned i = 0; i < b->len && k + 3 <= outlen; i++)
    k += (size_t)snprintf(out + k, 3, "%02x", b->id[i]);
  if (outlen) out[k < outlen ? k : outlen - 1] = 0;
}

/* ---- images ---- */

typedef struct image_hdr {
  char magic[8];
  uint32_t version, hdr_size;
  uint64_t base, image_len, footprint, cap, tag;
  uint64_t exe_base, lua_base;
  uint8_t exe_id_len, lua_id_len, pad_[6];
  uint8_t exe_id[SBX_BUILD_ID_MAX], lua_id[SBX_BUILD_ID_MAX];
  uint8_t sha256[32];
} image_hdr;

#define HASHED_HDR offsetof(image_hdr, sha256)

/* sha256(header bytes before the hash || image). */
static int image_hash(const image_hdr *h, const void *img, size_t len, uint8_t out[32]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, h, HASHED_HDR) &&
           EVP_DigestUpdate(c, img, len) && EVP_DigestFinal_ex(c, out, NULL);
  EVP_MD_CTX_free(c);
  return ok ? 0 : -1;
}

static void hdr_to_info(const image_hdr *h, sbx_image_info *info) {
  memset(info, 0, sizeof *info);
  info->version = h->version;
  info->base = h->base;
  info->image_len = h->image_len;
  info->footprint = h->footprint;
  info->cap = h->cap;
  info->tag = h->tag;
  info->layout.exe.len = h->exe_id_len;
  memcpy(info->layout.exe.id, h->exe_id, sizeof h->exe_id);
  info->layout.lua.len = h->lua_id_len;
  memcpy(info->layout.lua.id, h->lua_id, sizeof h->lua_id);
  info->layout.exe_base = h->exe_base;
  info->layout.lua_base = h->lua_base;
  memcpy(info->sha256, h->sha256, 32);
  info->file_len = SBX_IMAGE_HDR_SIZE + h->image_len;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off) {
  const char *p = buf;
  while (n) {
    ssize_t w = pwrite(fd, p, n > (1u << 30) ? (1u << 30) : n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w, off += w;
  }
  return 0;
}

int sbx_arena_checkpoint(sbx_arena *a, int fd, uint64_t tag, sbx_image_info *info, vn_err *err) {
  const sbx_layout *me = sbx_layout_self();
  char page[SBX_IMAGE_HDR_SIZE];
  memset(page, 0, sizeof page);
  image_hdr *h = (image_hdr *)page;
  memcpy(h->magic, SBX_IMAGE_MAGIC, sizeof SBX_IMAGE_MAGIC);
  h->version = SBX_IMAGE_VERSION;
  h->hdr_size = SBX_IMAGE_HDR_SIZE;
  h->base = a->base;
  h->footprint = a->top - a->base;
  h->image_len = round_up(h->footprint, SBX_PAGE);
  h->cap = a->cap;
  h->tag = tag;
  h->exe_base = me->exe_base;
  h->lua_base = me->lua_base;
  h->exe_id_len = me->exe.len;
  h->lua_id_len = me->lua.len;
  memcpy(h->exe_id, me->exe.id, sizeof h->exe_id);
  memcpy(h->lua_id, me->lua.id, sizeof h->lua_id);
  if (image_hash(h, (void *)a->base, h->image_len, h->sha256))
    return vn_errf(err, "image_io", "sha256 of the image failed");
  if (pwrite_all(fd, (void *)a->base, h->image_len, SBX_IMAGE_HDR_SIZE) ||
      pwrite_all(fd, page, sizeof page, 0) ||
      ftruncate(fd, (off_t)(SBX_IMAGE_HDR_SIZE + h->image_len)))
    return vn_errf(err, "image_io", "writing the image (%zu bytes): %s", (size_t)h->image_len,
                   strerror(errno));
  if (info) hdr_to_info(h, info);
  return 0;
}

static int same_id(const sbx_build_id *a, const uint8_t *id, uint8_t len) {
  return a->len == len && !memcmp(a->id, id, len);
}

/* Read the header and check it for consistency with itself and the file. */
static int parse_hdr(int fd, image_hdr *h, vn_err *err) {
  char page[SBX_IMAGE_HDR_SIZE];
  ssize_t r = pread(fd, page, sizeof page, 0);
  if (r < 0) return vn_errf(err, "image_io", "reading the image header: %s", strerror(errno));
  if (r < (ssize_t)sizeof *h || memcmp(page, SBX_IMAGE_MAGIC, sizeof SBX_IMAGE_MAGIC))
    return vn_errf(err, "image_corrupt", "not a vmnode arena image (bad magic)");
  memcpy(h, page, sizeof *h);
  if (h->version != SBX_IMAGE_VERSION)
    return vn_errf(err, "image_version", "image format version %u, this build reads %u", h->version,
                   SBX_IMAGE_VERSION);
  off_t size = lseek(fd, 0, SEEK_END); /* not fstat: the worker's seccomp filter has no stat */
  if (size < 0) return vn_errf(err, "image_io", "size of the image: %s", strerror(errno));
  if (h->hdr_size != SBX_IMAGE_HDR_SIZE || h->image_len % SBX_PAGE || h->image_len < SBX_PAGE ||
      h->footprint > h->image_len || h->base % SBX_PAGE ||
      (uint64_t)size != SBX_IMAGE_HDR_SIZE + h->image_len || h->exe_id_len > SBX_BUILD_ID_MAX ||
      h->lua_id_len > SBX_BUILD_ID_MAX)
    return vn_errf(err, "image_corrupt",
                   "image header inconsistent (image %llu bytes, file %lld bytes)",
                   (unsigned long long)h->image_len, (long long)size);
  return 0;
}

int sbx_image_fits(const sbx_image_info *info, const sbx_layout *l, vn_err *err) {
  char want[2 * SBX_BUILD_ID_MAX + 1], have[2 * SBX_BUILD_ID_MAX + 1];
  const sbx_layout *im = &info->layout;
  if (!same_id(&l->exe, im->exe.id, im->exe.len)) {
    sbx_build_id_hex(&im->exe, want, sizeof want);
    sbx_build_id_hex(&l->exe, have, sizeof have);
    return vn_errf(err, "image_build_mismatch",
                   "image was written by executable build %s, this is build %s: replay instead",
                   want, have);
  }
  if (!same_id(&l->lua, im->lua.id, im->lua.len)) {
    sbx_build_id_hex(&im->lua, want, sizeof want);
    sbx_build_id_hex(&l->lua, have, sizeof have);
    return vn_errf(err, "image_build_mismatch",
                   "image was written with liblua build %s, this process has %s: replay instead",
                   want, have);
  }
  if (im->exe_base != l->exe_base || im->lua_base != l->lua_base)
    return vn_errf(err, "image_layout_mismatch",
                   "image expects the executable at %#llx and liblua at %#llx, they are at %#llx "
                   "and %#llx (address randomization on? workers need ADDR_NO_RANDOMIZE)",
                   (unsigned long long)im->exe_base, (unsigned long long)im->lua_base,
                   (unsigned long long)l->exe_base, (unsigned long long)l->lua_base);
  return 0;
}

int sbx_image_read(int fd, sbx_image_info *info, vn_err *err) {
  image_hdr h;
  if (parse_hdr(fd, &h, err)) return -1;
  hdr_to_info(&h, info);
  return 0;
}

/* Read the header, check it against this process; fill *h. */
static int read_hdr(int fd, image_hdr *h, vn_err *err) {
  sbx_image_info info;
  if (parse_hdr(fd, h, err)) return -1;
  hdr_to_info(h, &info);
  return sbx_image_fits(&info, sbx_layout_self(), err);
}

static int verify_hash(int fd, const image_hdr *h, vn_err *err) {
  void *m = mmap(NULL, h->image_len, PROT_READ, MAP_PRIVATE, fd, SBX_IMAGE_HDR_SIZE);
  if (m == MAP_FAILED) return vn_errf(err, "image_io", "mapping the image: %s", strerror(errno));
  uint8_t sum[32];
  int rc = image_hash(h, m, h->image_len, sum);
  munmap(m, h->image_len);
  if (rc) return vn_errf(err, "image_io", "sha256 of the image failed");
  if (memcmp(sum, h->sha256, 32))
    return vn_errf(err, "image_corrupt", "image sha256 does not match its header (corrupted)");
  return 0;
}

int sbx_image_check(int fd, int verify, sbx_image_info *info, vn_err *err) {
  image_hdr h;
  if (read_hdr(fd, &h, err) || (verify && verify_hash(fd, &h, err))) return -1;
  if (info) hdr_to_info(&h, info);
  return 0;
}

sbx_arena *sbx_arena_restore(sbx_arena *into, size_t reserve, int fd, unsigned flags,
                             sbx_image_info *info, vn_err *err) {
  image_hdr h;
  if (read_hdr(fd, &h, err)) return NULL;
  if (into && into->base != h.base) {
    vn_errf(err, "image_layout_mismatch", "image is for an arena at %#llx, this one is at %#lx",
            (unsigned long long)h.base, (unsigned long)into->base);
    return NULL;
  }
  size_t res = into ? into->reserve : reserve ? reserve : SBX_ARENA_RESERVE;
  if (h.image_len > res) {
    vn_errf(err, "image_layout_mismatch", "image of %llu MiB does not fit a %zu MiB arena",
            (unsigned long long)h.image_len >> 20, res >> 20);
    return NULL;
  }
  if ((flags & SBX_RESTORE_VERIFY) && verify_hash(fd, &h, err)) return NULL;
  uintptr_t base = h.base;
  if (!into) {
    void *m = map_reserve(base, res, MAP_FIXED_NOREPLACE);
    if (m == MAP_FAILED || (uintptr_t)m != base) {
      if (m != MAP_FAILED) munmap(m, res);
      vn_errf(err, "arena_map", "cannot map an arena at %#lx: %s", (unsigned long)base,
              strerror(errno));
      return NULL;
    }
  }
  /* From here on the old contents are gone: a failure leaves no arena. */
  if (mmap((void *)base, h.image_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
           SBX_IMAGE_HDR_SIZE) == MAP_FAILED ||
      (res > h.image_len &&
       map_reserve(base + h.image_len, res - h.image_len, MAP_FIXED) == MAP_FAILED)) {
    vn_errf(err, "arena_lost", "mapping the image at %#lx: %s", (unsigned long)base,
            strerror(errno));
    munmap((void *)base, res);
    return NULL;
  }
  sbx_arena *a = (sbx_arena *)base;
  if (a->magic != ARENA_MAGIC || a->version != ARENA_VERSION || a->base != base ||
      a->top - base != h.footprint) {
    vn_errf(err, "arena_lost", "the image's own arena header is invalid");
    munmap((void *)base, res);
    return NULL;
  }
  a->reserve = res;
  if (a->cap > res) a->cap = res;
  if (info) hdr_to_info(&h, info);
  return a;
}
