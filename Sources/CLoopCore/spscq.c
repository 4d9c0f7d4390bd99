/*
 * spscq.c — the segmented single-producer, single-consumer queue (lk_spscq.h). The protocol and the hot
 * paths are in spscq_impl.h; this file holds segment management and the public wrappers.
 */
#include "spscq_impl.h"

#include <errno.h>
#include <string.h>

/* A zeroed segment: every seq word 0, which no position's task has (see spscq_impl.h). */
static lk_segment *segment_alloc(void) {
    if (lk__fault_alloc(LK_FAULT_SEGMENT_ALLOC)) return NULL;
    lk_segment *seg = aligned_alloc(LK_CACHELINE, sizeof(lk_segment));
    if (seg != NULL) memset(seg, 0, sizeof(*seg)); /* all-zero bytes are a valid initial atomic here */
    return seg;
}

int lk__spscq_init(lk_spscq *q) {
    memset(q, 0, sizeof(*q));
    lk_segment *seg = segment_alloc();
    if (seg == NULL) return -ENOMEM;
    for (int i = 0; i < LK_SPSCQ_SPARES; i++) atomic_init(&q->spare[i], NULL);
    q->tail_seg = seg;
    q->head_seg = seg;
    q->segments_allocated = 1;
    LK_OWNER_INIT(&q->consumer);
    return 0;
}

void lk__spscq_deinit(lk_spscq *q) {
    /* Quiescent: the chain from the consumer's segment to the producer's, then the spares. relaxed
     * throughout: neither side runs, and whoever calls this synchronised with both. */
    lk_segment *seg = q->head_seg;
    while (seg != NULL) {
        lk_segment *next = seg == q->tail_seg ? NULL : atomic_load_explicit(&seg->next, memory_order_relaxed);
        free(seg);
        seg = next;
    }
    for (int i = 0; i < LK_SPSCQ_SPARES; i++) free(atomic_load_explicit(&q->spare[i], memory_order_relaxed));
}

int lk__spscq_grow(lk_spscq *q) {
    lk_segment *seg = NULL;
    for (int i = 0; i < LK_SPSCQ_SPARES && seg == NULL; i++) {
        /* relaxed peek; the exchange below is what takes the segment. */
        if (atomic_load_explicit(&q->spare[i], memory_order_relaxed) != NULL)
            /* acquire: pairs with recycle's release CAS; the consumer is done reading the segment. */
            seg = atomic_exchange_explicit(&q->spare[i], NULL, memory_order_acquire);
    }
    if (seg == NULL) {
        seg = segment_alloc();
        if (seg == NULL) return -ENOMEM;
        q->segments_allocated++;
    }
    atomic_store_explicit(&seg->next, NULL, memory_order_relaxed); /* published by the release below */
    /* release: publishes the segment's seq words to C's acquire of `next` (see its declaration). */
    atomic_store_explicit(&q->tail_seg->next, seg, memory_order_release);
    q->tail_seg = seg;
    return 0;
}

void lk__spscq_recycle(lk_spscq *q, lk_segment *seg) {
    for (int i = 0; i < LK_SPSCQ_SPARES; i++) {
        lk_segment *expected = NULL;
        /* release: pairs with grow's acquire exchange (see `spare`). */
        if (atomic_compare_exchange_strong_explicit(&q->spare[i], &expected, seg, memory_order_release,
                                                    memory_order_relaxed))
            return;
    }
    free(seg);
    q->segments_freed++;
}

int lk_spscq_create(lk_spscq **out) {
    lk_spscq *q = aligned_alloc(LK_FALSE_SHARING_RANGE, sizeof(*q));
    if (q == NULL) return -ENOMEM;
    int rc = lk__spscq_init(q);
    if (rc != 0) {
        free(q);
        return rc;
    }
    *out = q;
    return 0;
}

void lk_spscq_destroy(lk_spscq *q) {
    if (q == NULL) return;
    lk__spscq_deinit(q);
    free(q);
}

int lk_spscq_push(lk_spscq *q, const lk_task *task) { return lk__spscq_push(q, task); }

size_t lk_spscq_pop_batch(lk_spscq *q, lk_task *out, size_t max) {
    lk__owner_check(&q->consumer, "lk_spscq_pop_batch");
    return lk__spscq_pop_batch(q, out, max);
}

bool lk_spscq_is_empty(lk_spscq *q) {
    lk__owner_check(&q->consumer, "lk_spscq_is_empty");
    return lk__spscq_is_empty(q);
}

void lk_spscq_consumer_hand_over(lk_spscq *q) { lk__owner_release(&q->consumer); }

void lk_spscq_stats_get(lk_spscq *q, lk_spscq_stats *out) {
    out->segments_allocated = q->segments_allocated;
    out->segments_live = q->segments_allocated - q->segments_freed;
}
