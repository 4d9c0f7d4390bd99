/*
 * alloc_count.c — counts heap allocations by interposing malloc and friends in the benchmark executable.
 *
 * Why our own: ordo-one/malloc-interposer works on Linux only as an LD_PRELOADed shared library, which the
 * static, toolchain-free loopbench binary cannot count on. Defining the symbols in the executable interposes
 * them for every library it loads (ELF symbol resolution), and for the statically linked Swift runtime.
 * Each call forwards to glibc's __libc_* entry points. Counting is off unless lkb_alloc_enable(1): then
 * every allocation adds one to a relaxed atomic (measurement passes only, never timed runs).
 */
#include "lkb.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic int lkb_counting = 0;        /* relaxed: a switch flipped between runs */
static _Atomic uint64_t lkb_allocations = 0; /* relaxed: a statistic read after the counted region */

static inline void count(void) {
    if (atomic_load_explicit(&lkb_counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&lkb_allocations, 1, memory_order_relaxed);
}

void lkb_alloc_enable(int on) { atomic_store_explicit(&lkb_counting, on, memory_order_relaxed); }
uint64_t lkb_alloc_count(void) { return atomic_load_explicit(&lkb_allocations, memory_order_relaxed); }

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (p == NULL) count(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    count();
    void *p = __libc_memalign(a, n);
    if (p == NULL) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
