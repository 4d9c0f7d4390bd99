/*
 * lk_spscq.h — an unbounded single-producer, single-consumer queue of tasks: fixed-size segments of task
 * slots, linked by the producer as it fills them and handed back for reuse by the consumer as it empties
 * them. The per-producer ingress gives every producer thread one of these per loop (lk_ingress.h); the
 * benchmarks use it alone as LoopKit's bare C-level hand-off.
 *
 * Cost: a push is a copy into a 32-byte slot and one release store of the slot's own sequence word (no
 * read-modify-write, no fence, no shared tail); every LK_SPSCQ_SEGMENT_SLOTS pushes it links a segment (a
 * recycled one, or malloc when the consumer has none to give back). A pop reads each slot's sequence word
 * (acquire) and copies the task out, so detecting a task and reading it is one cache-line transfer; the
 * consumer writes nothing the producer reads except the segments it hands back.
 *
 * Threading: push from one producer thread at a time; pop_batch, is_empty and length from one consumer
 * thread at a time; create and destroy with neither running. A producer or consumer may change threads
 * when the change is synchronised (a thread exit followed by a join, a mutex), as for any plain data.
 */
#ifndef LK_SPSCQ_H
#define LK_SPSCQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lk_task.h"

/* Tasks per segment: 4 KiB of payload. */
#define LK_SPSCQ_SEGMENT_SLOTS 128

typedef struct lk_spscq lk_spscq;

/* Creates an empty queue holding one segment. Returns 0 or -ENOMEM. */
int lk_spscq_create(lk_spscq **out);
/* Frees the queue and its segments. Tasks still queued are dropped: pop them first if they own anything. */
void lk_spscq_destroy(lk_spscq *q);

/* Producer: appends a copy of *task. Returns 0, or -ENOMEM when a new segment was needed and none could be
 * allocated (nothing is queued then). */
int lk_spscq_push(lk_spscq *q, const lk_task *task);

/* Consumer: moves up to max tasks, oldest first, into out. Returns how many. */
size_t lk_spscq_pop_batch(lk_spscq *q, lk_task *out, size_t max);
/* Consumer: true when every published task has been popped. */
bool lk_spscq_is_empty(lk_spscq *q);
/* The consumer thread gives the consumer side up: the next consumer-side call may come from another thread
 * (ordered after this call by the caller's own synchronisation, e.g. a join or a mutex). Debug builds
 * (LK_DEBUG) record the consumer thread on its first call and stop the process, naming the call, when
 * another thread makes one without this hand-over; release builds check nothing. */
void lk_spscq_consumer_hand_over(lk_spscq *q);

typedef struct lk_spscq_stats {
    uint64_t segments_allocated; /* segments ever created with malloc */
    uint64_t segments_live;      /* segments the queue holds now: linked, current or spare */
} lk_spscq_stats;

/* Quiescent (neither side running): the segment counts. */
void lk_spscq_stats_get(lk_spscq *q, lk_spscq_stats *out);

#endif
