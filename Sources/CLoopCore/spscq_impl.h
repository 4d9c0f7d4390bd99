/*
 * spscq_impl.h — the layout of lk_spscq and its hot paths as static inline functions, so the per-producer
 * ingress (ingress_pp.c) can embed a queue in its producer record and inline push and pop. spscq.c wraps
 * them as the public lk_spscq_* functions.
 *
 * Protocol (one producer P, one consumer C; lk_spscq.h gives the threading rules). Positions are 64-bit and
 * free-running; position p lives in slot p % N of its segment, and each 32-byte slot carries its own
 * sequence word, so a task and the word that publishes it share a cache line:
 *   P: (at p % N == 0 with p != 0, link a new segment: its `next` link stored with release)
 *      write the task into the slot; store seq = p + 1 (release).
 *   C: at position h, find the slot (following `next`, acquire, at a segment boundary; none yet means
 *      empty); the slot holds h's task when seq == h + 1 (acquire); copy it out. On the first slot of a new
 *      segment, hand the finished one back.
 * No shared tail: the consumer detects a task and reads it with one cache-line transfer, and the producer
 * writes only lines the consumer reads anyway. A seq value other than h + 1 means "not yet": a segment is
 * zeroed when allocated, and a recycled one holds only the seq values of positions below any it will serve.
 * Every task C copies was written before the release store of the seq C acquired, so there is no window in
 * which a pushed task is half-visible (no BUSY state). Segments flow back through `spare` (a few slots, CAS
 * NULL -> segment by C, exchange -> NULL by P); when every spare slot is full C frees the segment, and when
 * none holds one P allocates. Steady state therefore allocates nothing.
 */
#ifndef LK_SPSCQ_IMPL_H
#define LK_SPSCQ_IMPL_H

#include <stdlib.h>

#include "debug_impl.h"
#include "fault_hook.h"
#include "lk_atomic.h"
#include "lk_spscq.h"

#define LK_SPSCQ_SPARES 2

typedef struct lk_spscq_slot {
    lk_task task;
    /* Position + 1 of the task in the slot (0: never written). Stored by P after the task (release:
     * publishes it); loaded by C (acquire, pairs with it). */
    _Atomic uint64_t seq;
} lk_spscq_slot;

_Static_assert(sizeof(lk_spscq_slot) == 32, "two slots to a 64-byte line");
_Static_assert((LK_SPSCQ_SEGMENT_SLOTS & (LK_SPSCQ_SEGMENT_SLOTS - 1)) == 0, "segment size is a power of two");

typedef struct lk_segment lk_segment;
struct lk_segment {
    /* Line-aligned, which also pads the struct to whole lines: aligned_alloc needs a size that is a
     * multiple of the alignment. */
    alignas(LK_CACHELINE) lk_spscq_slot slots[LK_SPSCQ_SEGMENT_SLOTS];
    /* The segment after this one. Stored by P (release: publishes the new segment's zeroed or stale seq
     * words) before it writes the segment's first task; loaded by C (acquire, pairs with it). */
    _Atomic(lk_segment *) next;
};

_Static_assert(sizeof(lk_segment) % LK_CACHELINE == 0, "aligned_alloc(LK_CACHELINE, sizeof(lk_segment))");

struct lk_spscq {
    /* P-private line. */
    alignas(LK_FALSE_SHARING_RANGE) uint64_t tail; /* positions ever pushed */
    lk_segment *tail_seg;                          /* the segment holding position tail */
    uint64_t segments_allocated;                   /* statistic */

    /* C-private line. */
    alignas(LK_FALSE_SHARING_RANGE) uint64_t head; /* positions ever popped */
    lk_segment *head_seg; /* the segment of position head - 1 (of 0 before the first pop): see pop */
    uint64_t segments_freed; /* statistic */
    LK_OWNER_FIELD(consumer) /* debug builds: the consumer of a standalone queue (lk_spscq.h, debug_impl.h) */

    /* Segments handed from C to P. A slot is CASed NULL -> segment by C (release: C's reads of the
     * segment's slots happen before P rewrites them) and exchanged to NULL by P (acquire, pairs with it). */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic(lk_segment *) spare[LK_SPSCQ_SPARES];
};

/* Initialises an empty queue in place with one segment. 0 or -ENOMEM. */
int lk__spscq_init(lk_spscq *q);
/* Frees the queue's segments (not q itself). */
void lk__spscq_deinit(lk_spscq *q);
/* P: the slow part of a push, a new tail segment. 0 or -ENOMEM. */
int lk__spscq_grow(lk_spscq *q);
/* C: hands a finished segment back to P, or frees it. */
void lk__spscq_recycle(lk_spscq *q, lk_segment *seg);

/* P: true when the next push needs a new segment (lk__spscq_grow). */
static inline bool lk__spscq_at_boundary(const lk_spscq *q) {
    return (q->tail & (LK_SPSCQ_SEGMENT_SLOTS - 1)) == 0 && q->tail != 0;
}

/* P: appends the task {w0, w1, w2} when the tail segment has room (!lk__spscq_at_boundary). The words
 * arrive in registers and are stored one by one: a task copied through memory would cost the caller's stores
 * and a load that waits for them (a 16-byte load cannot be forwarded from two 8-byte stores). No call: a
 * fast path without calls needs no saved registers, i.e. no stack stores, which would compete with the
 * slot's stores for the store buffer while they wait for their cache line. Always inlined, so that its
 * callers' fast paths stay call-free too, whatever the optimizer's inlining budget. */
__attribute__((always_inline)) static inline void lk__spscq_push_in_segment(lk_spscq *q, uintptr_t w0,
                                                                           uintptr_t w1, uintptr_t w2) {
    uint64_t t = q->tail;
    uint32_t i = (uint32_t)(t & (LK_SPSCQ_SEGMENT_SLOTS - 1));
    lk_spscq_slot *slot = &q->tail_seg->slots[i];
    slot->task.words[0] = w0;
    slot->task.words[1] = w1;
    slot->task.words[2] = w2;
    /* release: publishes the task; pairs with C's acquire in lk__spscq_slot_at. */
    atomic_store_explicit(&slot->seq, t + 1, memory_order_release);
    q->tail = t + 1;
}

/* P: appends the task {w0, w1, w2}. 0 or -ENOMEM (nothing queued). */
static inline int lk__spscq_push_words(lk_spscq *q, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    if (__builtin_expect(lk__spscq_at_boundary(q), 0)) {
        int rc = lk__spscq_grow(q);
        if (rc != 0) return rc;
    }
    lk__spscq_push_in_segment(q, w0, w1, w2);
    return 0;
}

/* P: appends a copy of *task. 0 or -ENOMEM (nothing queued). */
static inline int lk__spscq_push(lk_spscq *q, const lk_task *task) {
    return lk__spscq_push_words(q, task->words[0], task->words[1], task->words[2]);
}

/* C: the slot of position h (q->head or the next ones), or NULL when its segment is not linked yet. *seg is
 * the segment of position h - 1 on entry and of h on return. */
static inline lk_spscq_slot *lk__spscq_slot_at(lk_segment **seg, uint64_t h) {
    uint32_t i = (uint32_t)(h & (LK_SPSCQ_SEGMENT_SLOTS - 1));
    if (__builtin_expect(i == 0 && h != 0, 0)) {
        /* acquire: pairs with grow's release of `next`. */
        lk_segment *next = atomic_load_explicit(&(*seg)->next, memory_order_acquire);
        if (next == NULL) return NULL;
        *seg = next;
    }
    return &(*seg)->slots[i];
}

/* C: true when slot holds position h's task. */
static inline bool lk__spscq_published(lk_spscq_slot *slot, uint64_t h) {
    /* acquire: pairs with the release store in push; the task is visible after it. */
    return slot != NULL && atomic_load_explicit(&slot->seq, memory_order_acquire) == h + 1;
}

/* C: moves up to max tasks into out. */
static inline size_t lk__spscq_pop_batch(lk_spscq *q, lk_task *out, size_t max) {
    uint64_t h = q->head;
    lk_segment *seg = q->head_seg;
    size_t n = 0;
    while (n < max) {
        lk_segment *s = seg;
        lk_spscq_slot *slot = lk__spscq_slot_at(&s, h);
        if (!lk__spscq_published(slot, h)) break;
        out[n++] = slot->task;
        if (__builtin_expect(s != seg, 0)) { /* first task of a new segment: the old one is done */
            lk__spscq_recycle(q, seg);
            seg = s;
        }
        h++;
    }
    q->head = h;
    q->head_seg = seg;
    return n;
}

/* C: true when every task pushed so far (and published) has been popped. */
static inline bool lk__spscq_is_empty(lk_spscq *q) {
    lk_segment *s = q->head_seg;
    return !lk__spscq_published(lk__spscq_slot_at(&s, q->head), q->head);
}

#endif
