/*
 * gate_impl.h — the admission gate's layout and its enter/exit fast paths as static inline functions, so the
 * submit path (lk_ingress_submit) runs them without a call. gate.c holds the rest: records, closing.
 * The protocol is in gate.c's file comment.
 */
#ifndef LK_GATE_IMPL_H
#define LK_GATE_IMPL_H

#include <errno.h>
#include <stdbool.h>

#include "barrier_impl.h"
#include "lk_atomic.h"
#include "lk_gate.h"

struct lk_gate {
    /* 0 open, 1 closed. Stored by the closer (relaxed; ordered by barrier C); loaded by submitters
     * (relaxed after barrier S). */
    _Atomic int closed;
};

typedef struct lk_gate_record lk_gate_record;
struct lk_gate_record {
    /* 1 while the owning thread is inside a gate. Stored by the owner (relaxed on entry, ordered by
     * barrier S; release on exit, publishing the task); loaded by closers (acquire, pairs with exit). */
    alignas(LK_CACHELINE) _Atomic int inside;
    /* 1 while a thread owns the record. Exchanged by a thread taking a free record (acquire) and stored 0
     * by the key destructor at thread exit (release). */
    _Atomic int owned;
    /* Next record; written once before the record is published (relaxed), read by scanners after an
     * acquire of the list head or of the previous next. */
    _Atomic(lk_gate_record *) next;
};

/* This thread's record, NULL until its first enter. */
extern _Thread_local lk_gate_record *lk__gate_self;

/* Slow path of enter: the thread's first, which takes a record. NULL when none can be allocated. */
lk_gate_record *lk__gate_self_record(void);

/* Enter through this thread's record `r` (lk__gate_self, known to be set): true inside, false closed. */
static inline bool lk__gate_enter_with(lk_gate *g, lk_gate_record *r) {
    atomic_store_explicit(&r->inside, 1, memory_order_relaxed); /* ordered by barrier S */
    lk__barrier_light(); /* Barrier S (spin/gate.pml: NO_BARRIER_S): pairs with barrier C */
    if (atomic_load_explicit(&g->closed, memory_order_relaxed) != 0) { /* ordered by barrier S */
        atomic_store_explicit(&r->inside, 0, memory_order_relaxed);     /* nothing was published */
        return false;
    }
    return true;
}

/* lk_gate_enter without its `failed` out-parameter: 1 inside, 0 closed, -ENOMEM. */
static inline int lk__gate_enter(lk_gate *g) {
    lk_gate_record *r = lk__gate_self;
    if (__builtin_expect(r == NULL, 0) && (r = lk__gate_self_record()) == NULL) return -ENOMEM;
    return lk__gate_enter_with(g, r) ? 1 : 0;
}

static inline void lk__gate_exit(void) {
    /* release: publishes the caller's task to the closer's acquire scan. */
    atomic_store_explicit(&lk__gate_self->inside, 0, memory_order_release);
}

#endif
