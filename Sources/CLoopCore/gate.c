/*
 * gate.c — the admission gate (see lk_gate.h).
 *
 * Protocol (Dekker, with an asymmetric barrier):
 *   submitter: rec->inside = 1;  [barrier S];  if (g->closed) { rec->inside = 0; reject }
 *              publish the task;  rec->inside = 0 (release)
 *   closer:    g->closed = 1;  [barrier C];  for each record: wait until inside == 0 (acquire)
 *              then drain.
 * Claim: a submitter that finds the gate open has its task published before the closer's drain. Either
 * the submitter's `inside = 1` is visible to the closer's scan (it waits for the exit, whose release
 * publishes the task), or the closer's `closed = 1` is visible to the submitter's check (it rejects).
 * Both invisible needs each side's store to pass its own later load: barriers S and C forbid that.
 * S is barrier_impl.h's light barrier and C its heavy one: with membarrier, a compiler barrier and
 * membarrier(PRIVATE_EXPEDITED); without, two seq_cst fences.
 *
 * Records: one per thread that has ever entered a gate, created on first use, linked into a global
 * append-only list (so the closer can scan it without a lock) and recycled when their thread exits
 * (pthread key destructor). Records are shared by all gates: a thread inside gate A delays the closing of
 * gate B by the few instructions of its critical section, which is harmless.
 *
 * The spec's model of this protocol is spin/gate.pml (`make verify`); change both together.
 */
#include "gate_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "barrier_impl.h"
#include "lk_atomic.h"
#include "lk_thread.h"

/* Head of the global record list. Pushed with a release CAS (publishes the new record's fields); loaded
 * with acquire by scanners and by threads looking for a free record. */
static _Atomic(lk_gate_record *) lk__gate_records = NULL;

static pthread_once_t lk__gate_once = PTHREAD_ONCE_INIT;
static pthread_key_t lk__gate_key;

_Thread_local lk_gate_record *lk__gate_self = NULL;

/* Key destructor, on the exiting thread: forget the record first, so that a later destructor on this thread
 * that submits takes a fresh record instead of one another thread may own by then. */
static void release_record(void *rec) {
    lk_gate_record *r = rec;
    lk__gate_self = NULL;
    atomic_store_explicit(&r->owned, 0, memory_order_release); /* release: pairs with the next owner's acquire */
}

static void gate_setup(void) { pthread_key_create(&lk__gate_key, release_record); }

bool lk_gate_uses_membarrier(void) { return lk__barrier_is_asymmetric(); }

int lk_gate_create(lk_gate **out) {
    pthread_once(&lk__gate_once, gate_setup);
    lk__barrier_is_asymmetric(); /* decides the barrier mode before any thread can enter this gate */
    lk_gate *g = malloc(sizeof(*g));
    if (g == NULL) return -ENOMEM;
    atomic_init(&g->closed, 0);
    *out = g;
    return 0;
}

void lk_gate_destroy(lk_gate *g) { free(g); }

/* This thread's record: a recycled one, or a new one pushed on the global list. */
lk_gate_record *lk__gate_self_record(void) {
    lk_gate_record *r = lk__gate_self;
    if (r != NULL) return r;
    /* acquire: pairs with the release CAS that published each record. */
    for (r = atomic_load_explicit(&lk__gate_records, memory_order_acquire); r != NULL;
         r = atomic_load_explicit(&r->next, memory_order_acquire)) {
        int free_mark = 0;
        /* acquire: pairs with release_record, so the previous owner is done with it. */
        if (atomic_compare_exchange_strong_explicit(&r->owned, &free_mark, 1, memory_order_acquire,
                                                    memory_order_relaxed))
            break;
    }
    if (r == NULL) {
        r = aligned_alloc(LK_CACHELINE, sizeof(*r));
        if (r == NULL) return NULL;
        atomic_init(&r->inside, 0);
        atomic_init(&r->owned, 1);
        lk_gate_record *head = atomic_load_explicit(&lk__gate_records, memory_order_relaxed); /* CAS below */
        do {
            atomic_store_explicit(&r->next, head, memory_order_relaxed); /* published by the CAS */
            /* release: publishes the record's fields to scanners. */
        } while (!atomic_compare_exchange_weak_explicit(&lk__gate_records, &head, r, memory_order_release,
                                                        memory_order_relaxed));
    }
    pthread_setspecific(lk__gate_key, r);
    lk__gate_self = r;
    return r;
}

bool lk_gate_enter(lk_gate *g, bool *failed) {
    int rc = lk__gate_enter(g);
    if (failed != NULL) *failed = rc < 0;
    return rc > 0;
}

void lk_gate_exit(void) { lk__gate_exit(); }

void lk_gate_close(lk_gate *g) {
    atomic_store_explicit(&g->closed, 1, memory_order_relaxed); /* ordered by barrier C */
    /* Barrier C (spin/gate.pml: NO_BARRIER_C): pairs with barrier S. In membarrier mode the submitters'
     * barrier S is a compiler barrier only, so no fence of the closer's own could replace this call
     * (spin/gate.pml, NO_BARRIER_S: an accepted task is lost); lk__barrier_heavy never falls back. */
    lk__barrier_heavy();
    /* acquire: pairs with the release that published each record. */
    for (lk_gate_record *r = atomic_load_explicit(&lk__gate_records, memory_order_acquire); r != NULL;
         r = atomic_load_explicit(&r->next, memory_order_acquire)) {
        /* spin/gate.pml: NO_CLOSER_WAIT. Polled relaxed, confirmed with acquire: the wait ends on an acquire
         * load that reads 0, as a plain acquire spin would. The relaxed polls matter under ThreadSanitizer,
         * where every acquire load takes the location's lock: a closer spinning on acquire loads can keep the
         * submitter's release in lk_gate_exit from ever taking it. */
        for (;;) {
            while (atomic_load_explicit(&r->inside, memory_order_relaxed) != 0) lk_thread_spin_pause(); /* a poll */
            /* acquire: pairs with lk_gate_exit's release; the submitter's task is then visible. */
            if (atomic_load_explicit(&r->inside, memory_order_acquire) == 0) break;
        }
    }
}
