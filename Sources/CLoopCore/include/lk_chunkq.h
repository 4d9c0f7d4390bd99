/*
 * lk_chunkq.h — mutex-guarded queue of fixed-size chunks ("balanced" ingress).
 *
 * Tasks are copied into 128-slot chunks linked in a list under one mutex. Drained chunks are recycled (a few
 * are kept spare), so steady state allocates nothing. lk_chunkq_pop_batch takes many tasks per lock hold.
 *
 * Threading: lk_chunkq_push from any thread; pop, pop_batch and is_empty from one consumer thread at a time
 * (the mutex would allow more; the single-consumer contract is kept so it is interchangeable with lk_mpsc).
 */
#ifndef LK_CHUNKQ_H
#define LK_CHUNKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lk_task.h"

#define LK_CHUNKQ_CHUNK_SLOTS 128

typedef struct lk_chunkq lk_chunkq;

/* Creates an empty queue. Returns 0, or -ENOMEM. */
int lk_chunkq_create(lk_chunkq **out);
/* Frees the queue and all chunks. Tasks still queued are dropped. No concurrent use allowed. */
void lk_chunkq_destroy(lk_chunkq *q);
/* Appends a copy of *task. Returns 1 if the queue was empty before, 0 if not, -ENOMEM (nothing queued). */
int lk_chunkq_push(lk_chunkq *q, const lk_task *task);
/* Consumer: copies the oldest task to *out; LK_POP_OK or LK_POP_EMPTY (a locked queue is never BUSY). */
lk_pop_status lk_chunkq_pop(lk_chunkq *q, lk_task *out);
/* Consumer: pops up to max tasks under one lock hold. Returns how many. */
size_t lk_chunkq_pop_batch(lk_chunkq *q, lk_task *out, size_t max);
/* Any thread, without locking: true when nothing is queued (as of the last push or pop to complete). */
bool lk_chunkq_is_empty(lk_chunkq *q);
/* Any thread, without locking: number of queued tasks (as of the last push or pop to complete). */
size_t lk_chunkq_length(lk_chunkq *q);
/* The consumer thread gives the consumer side up: the next consumer-side call may come from another thread
 * (ordered after this call by the caller's own synchronisation, e.g. a join or a mutex). Debug builds
 * (LK_DEBUG) record the consumer thread on its first call and stop the process, naming the call, when
 * another thread makes one without this hand-over; release builds check nothing. */
void lk_chunkq_consumer_hand_over(lk_chunkq *q);

typedef struct lk_chunkq_stats {
    uint64_t chunks_allocated; /* chunks created with malloc, ever */
    uint64_t chunks_live;      /* chunks currently owned (in the list or spare) */
    uint64_t chunks_spare;     /* drained chunks kept for reuse */
} lk_chunkq_stats;

void lk_chunkq_stats_get(lk_chunkq *q, lk_chunkq_stats *out);

#endif
