/*
 * barrier_impl.h — asymmetric memory barriers, shared by the admission gate (gate.c) and the per-producer
 * ingress (ingress_pp.c). A Dekker pair needs a StoreLoad barrier on both sides; when one side is hot (every
 * submit) and the other rare (a gate closing, a loop giving up a producer's queue), the hot side can pay
 * only a compiler barrier if the rare side runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): that system
 * call runs a full barrier on every CPU currently running a thread of this process, and a thread not
 * running has passed a context switch, itself a full barrier. So for any hot-side sequence "store X; load
 * Y" and a rare side "store Y; heavy barrier; load X", either the hot load comes after that thread's barrier
 * and sees Y, or the hot store preceded it and is visible when the heavy barrier returns.
 *
 * Without membarrier (old kernels, seccomp) the light side is a seq_cst fence and the heavy side a seq_cst
 * fence too: the classic symmetric Dekker. Callers that want to skip the light barrier altogether (the
 * ingress's fast mode) check lk__barrier_is_asymmetric first.
 */
#ifndef LK_BARRIER_IMPL_H
#define LK_BARRIER_IMPL_H

#include <stdbool.h>

#include "lk_atomic.h"

/* 1 when membarrier is registered, 0 for fences. Stored once by the setup under a pthread_once, before any
 * caller can reach the light barrier (every object using it calls lk__barrier_is_asymmetric when it is
 * created), so it is read relaxed; the once and however the object was handed over publish it. */
extern _Atomic int lk__barrier_mode;

/* Decides the mode (once per process) and says whether membarrier is in use. */
bool lk__barrier_is_asymmetric(void);

/* The hot side's StoreLoad barrier. */
static inline void lk__barrier_light(void) {
    /* relaxed: see lk__barrier_mode. */
    if (atomic_load_explicit(&lk__barrier_mode, memory_order_relaxed) == 1)
        atomic_signal_fence(memory_order_seq_cst); /* compiler only: the heavy side's membarrier does the rest */
    else
        atomic_thread_fence(memory_order_seq_cst); /* StoreLoad: pairs with the heavy side's fence */
}

/* The rare side's StoreLoad barrier. In membarrier mode a transient failure is retried (about two seconds
 * in all); a permanent one stops the process with a message, since no fence of the caller's own can stand
 * in for the barriers the hot side skipped. */
void lk__barrier_heavy(void);

#endif
