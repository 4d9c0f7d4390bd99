/* barrier.c — the asymmetric barrier's mode and its heavy side (see barrier_impl.h). */
#include "barrier_impl.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault_hook.h"

_Atomic int lk__barrier_mode = -1;
static pthread_once_t lk__barrier_once = PTHREAD_ONCE_INIT;

static void barrier_setup(void) {
    int mode = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : 0;
    atomic_store_explicit(&lk__barrier_mode, mode, memory_order_release); /* release: see the declaration */
}

bool lk__barrier_is_asymmetric(void) {
    pthread_once(&lk__barrier_once, barrier_setup);
    /* acquire: pairs with the setup's release (the once orders it already; this keeps it explicit). */
    return atomic_load_explicit(&lk__barrier_mode, memory_order_acquire) == 1;
}

/* Transient failures (EINTR, EAGAIN, ENOMEM for the kernel's cpumask) are retried with a growing sleep. */
#define LK_BARRIER_ATTEMPTS 32

static void membarrier_or_abort(void) {
    for (int attempt = 0;; attempt++) {
        int e = lk__fault(LK_FAULT_MEMBARRIER);
        if (e == 0) {
            if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
            e = errno;
        }
        if ((e == EINTR || e == EAGAIN || e == ENOMEM) && attempt < LK_BARRIER_ATTEMPTS) {
            /* 1 us, doubling up to 128 ms: ~2 s over all attempts. */
            long ns = 1000L << (attempt < 17 ? attempt : 17);
            struct timespec pause = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        fprintf(stderr,
                "LoopKit: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration succeeded: %s "
                "(errno %d). Without it a task accepted from another thread could be lost.\n",
                strerror(e), e);
        abort();
    }
}

void lk__barrier_heavy(void) {
    /* relaxed: see lk__barrier_mode. */
    if (atomic_load_explicit(&lk__barrier_mode, memory_order_relaxed) == 1)
        membarrier_or_abort();
    else
        atomic_thread_fence(memory_order_seq_cst); /* StoreLoad: pairs with the light side's fence */
}
