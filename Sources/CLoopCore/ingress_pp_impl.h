/*
 * ingress_pp_impl.h — the per-producer ingress's records and its push fast path as a static inline
 * function, so that lk_ingress_push and lk_ingress_submit run a submit to the default ingress without a
 * call: the thread's last record, the slot copy and its release store, and the check of the record's flags.
 * Everything else is in ingress_pp.c, whose file comment gives the protocol.
 */
#ifndef LK_INGRESS_PP_IMPL_H
#define LK_INGRESS_PP_IMPL_H

#include "ingress_impl.h"
#include "spscq_impl.h"

#define PP_SCHEDULED 1u     /* the record is on the ready stack or in the loop's active list */
#define PP_PRODUCER_GONE 2u /* its thread has exited (or the test handle was exited) */
#define PP_LOOP_GONE 4u     /* its ingress is destroyed; the owning thread frees the record */
#define PP_FAST 8u          /* set only with SCHEDULED: pushes skip the fence (see the file comment) */

typedef struct pp_ingress pp_ingress;

struct lk_producer {
    lk_spscq q;

    /* The line every push reads. flags: PP_* bits. Changed with read-modify-writes only: announce and
     * exit set bits (acq_rel), the loop clears SCHEDULED (seq_cst, followed by its fence) and sets it when
     * it reclaims (acq_rel), sets FAST (relaxed: a producer that sees it late only fences longer) and
     * clears it (seq_cst, followed by the heavy barrier); destruction sets LOOP_GONE (acq_rel). The push's
     * loads are relaxed, ordered by the heavy barrier (first load) and its own fence (second load); see
     * the file comment. The loop's checks of PRODUCER_GONE are acquire loads, pairing with the exit. */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic uint32_t flags;
    lk_producer *ready_next; /* ready stack link: written by the pusher before its release CAS */
    /* Owning thread only: its last notification failed (the eventfd write did not go through), so its
     * next push notifies again even if the record is scheduled: that push is the "next signal" that
     * lk_wake.h promises will wake the loop for the work already queued. */
    bool notify_again;
    pp_ingress *ingress;     /* immutable; used by the owning thread only while LOOP_GONE is clear */
    uint64_t ingress_id;     /* immutable: the owning thread's lookup key */
    bool thread_owned;       /* immutable: false for a test handle */

    /* Loop-private. */
    alignas(LK_FALSE_SHARING_RANGE) lk_producer *active_next;
    lk_producer *active_prev;
    uint32_t idle;     /* consecutive visits that found the queue empty */
    uint32_t drained;  /* tasks taken since the loop got the record (capped at PP_FAST_AFTER) */
    bool fast;         /* the loop set FAST (mirror of the bit, which only the loop changes) */
    bool unscheduled;  /* cleared SCHEDULED in prepare_park, pending finish_park */
    /* Registry links, under lk__pp_lock. */
    lk_producer *reg_next;
    lk_producer *reg_prev;
};

struct pp_ingress {
    lk_ingress base;
    uint64_t id; /* immutable, process-unique: threads key their records by it, never by address */

    /* Ready stack. Pushed by announcers and exiting threads with a CAS (release: publishes ready_next and
     * the record); taken whole by the loop with an exchange (acquire, pairs with it). */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic(lk_producer *) ready;

    /* Loop-private: the active list, entered at `cursor` (where the next drain starts). */
    alignas(LK_FALSE_SHARING_RANGE) lk_producer *cursor;
    size_t active_count;

    /* Under lk__pp_lock. */
    lk_producer *registry;
    size_t registered;
};

/* A thread's records, one per ingress it has pushed to. */
typedef struct pp_thread {
    uint64_t last_id; /* ingress id of `last`; 0 for none (ids start at 1) */
    lk_producer *last;
    lk_producer **records;
    size_t count;
    size_t capacity;
    bool key_set; /* the exit destructor is armed for this thread */
} pp_thread;

extern _Thread_local pp_thread lk__pp_self;

/* The part of a push after its task is published (and not done by the fast path): the fence, the check of
 * SCHEDULED, the announcement, notifications. Returns lk_ingress_submit's result for a queued task. */
int lk__pp_after_publish(pp_ingress *ing, lk_producer *p);
/* Every other push: a thread whose last record is for another ingress (or none: lookup or registration),
 * or a push that needs a new segment. lk_ingress_submit's result. */
int lk__pp_push_slow(pp_ingress *ing, uintptr_t w0, uintptr_t w1, uintptr_t w2);

/* A push of {w0, w1, w2} to `ing` from the calling thread: lk_ingress_submit's result (0 in the common case;
 * LK_SUBMIT_WOKE, LK_SUBMIT_WAKE_FAILED | errno, or -ENOMEM otherwise). */
static inline int lk__pp_push_words(pp_ingress *ing, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    pp_thread *t = &lk__pp_self;
    lk_producer *p = t->last;
    /* Every call below is a tail call: the fast path makes none (see lk__spscq_push_in_segment). */
    if (__builtin_expect(t->last_id != ing->id || lk__spscq_at_boundary(&p->q), 0))
        return lk__pp_push_slow(ing, w0, w1, w2);
    lk__spscq_push_in_segment(&p->q, w0, w1, w2);
    /* Compiler barrier: the flags load stays after the seq store in the instruction stream, where the
     * loop's heavy barrier orders the two (see ingress_pp.c). spin/ingress.pml: the fast push. */
    atomic_signal_fence(memory_order_seq_cst);
    /* relaxed: ordered by the heavy barrier the loop runs before it clears FAST. */
    if (__builtin_expect((atomic_load_explicit(&p->flags, memory_order_relaxed) & PP_FAST) && !p->notify_again, 1))
        return 0;
    return lk__pp_after_publish(ing, p);
}

#endif
