/* debug.c — the contract checks' slow paths (debug_impl.h). Empty unless LK_DEBUG is defined. */
#include "debug_impl.h"

#ifdef LK_DEBUG

#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

void lk__assert_fail(const char *condition, const char *message, const char *file, int line) {
    fprintf(stderr, "LoopKit: contract violated: %s (%s, at %s:%d)\n", message, condition, file, line);
    abort();
}

/* The calling thread's kernel id, fetched once per thread (0: not yet). */
static _Thread_local uint64_t lk__self_tid;

void lk__owner_check(lk_owner *owner, const char *what) {
    uint64_t self = lk__self_tid;
    if (self == 0) self = lk__self_tid = (uint64_t)syscall(SYS_gettid);
    uint64_t expected = 0;
    /* relaxed: see lk_owner. */
    if (atomic_compare_exchange_strong_explicit(&owner->tid, &expected, self, memory_order_relaxed,
                                                memory_order_relaxed) || expected == self)
        return;
    fprintf(stderr, "LoopKit: contract violated: %s called on thread %llu, but it belongs to thread %llu "
            "(a single consumer, or the loop thread, only)\n",
            what, (unsigned long long)self, (unsigned long long)expected);
    abort();
}

void lk__owner_release(lk_owner *owner) {
    atomic_store_explicit(&owner->tid, 0, memory_order_relaxed); /* relaxed: see lk_owner */
}

#else

/* ISO C wants a translation unit to declare something. */
typedef int lk__debug_unused;

#endif
