/*
 * lk_mpsc.h — lock-free multi-producer / single-consumer task queue (Vyukov's intrusive node queue).
 *
 * Push costs one atomic exchange on the tail plus one release store linking the previous node: no retries,
 * wait-free for producers once they hold a node. Nodes come from a per-queue pool, so steady state allocates
 * nothing; the pool only grows (in slabs) when more tasks are in flight than ever before.
 *
 * Threading: lk_mpsc_push from any thread; lk_mpsc_pop, lk_mpsc_pop_batch and lk_mpsc_is_empty from one
 * consumer thread at a time; lk_mpsc_stats only when no thread is pushing or popping (tests).
 */
#ifndef LK_MPSC_H
#define LK_MPSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lk_task.h"

typedef struct lk_mpsc lk_mpsc;

/* Creates an empty queue. Returns 0, or -ENOMEM. */
int lk_mpsc_create(lk_mpsc **out);

/* Frees the queue and its pool. Tasks still queued are dropped: drain first. No concurrent use allowed. */
void lk_mpsc_destroy(lk_mpsc *q);

/*
 * Appends a copy of *task. Returns 1 when the queue was empty before this push (the consumer may be idle:
 * the wakeup signal), 0 when it was not, or -ENOMEM when the pool could not grow (nothing was queued).
 */
int lk_mpsc_push(lk_mpsc *q, const lk_task *task);

/* Consumer: copies the oldest task to *out. See lk_pop_status; BUSY is never "empty". */
lk_pop_status lk_mpsc_pop(lk_mpsc *q, lk_task *out);

/*
 * Consumer: pops up to max tasks into out[]. Returns how many; sets *busy (if non-NULL) when it stopped
 * because a producer was mid-push rather than because the queue was empty.
 */
size_t lk_mpsc_pop_batch(lk_mpsc *q, lk_task *out, size_t max, bool *busy);

/* Consumer: true only when nothing is queued and no push is in progress (BUSY counts as not empty). */
bool lk_mpsc_is_empty(lk_mpsc *q);
/* The consumer thread gives the consumer side up: the next consumer-side call may come from another thread
 * (ordered after this call by the caller's own synchronisation, e.g. a join or a mutex). Debug builds
 * (LK_DEBUG) record the consumer thread on its first call and stop the process, naming the call, when
 * another thread makes one without this hand-over; release builds check nothing. */
void lk_mpsc_consumer_hand_over(lk_mpsc *q);

typedef struct lk_mpsc_stats {
    uint64_t nodes_allocated; /* nodes the pool has ever created */
    uint64_t nodes_free;      /* nodes back in the pool */
    uint64_t nodes_in_use;    /* allocated - free: the queued tasks (the stub is not a pool node) */
    uint64_t slabs;           /* pool growth steps */
} lk_mpsc_stats;

/* Quiescent only (no concurrent push/pop): pool counters, walked exactly. */
void lk_mpsc_stats_get(lk_mpsc *q, lk_mpsc_stats *out);

/*
 * Tests only: the two halves of a push, so a test can hold a producer inside the busy window (after its
 * exchange of the tail, before its link store) and check that the consumer reports BUSY, not EMPTY.
 * begin returns 0 or -ENOMEM and two tokens that finish takes back; every begin must be finished.
 */
int lk_mpsc_push_begin_for_testing(lk_mpsc *q, const lk_task *task, void **prev, void **node);
void lk_mpsc_push_finish_for_testing(void *prev, void *node);

#endif
