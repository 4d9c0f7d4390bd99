/*
 * lk_ring.h — the microtask ring: a bounded MPSC ring of LK_RING_CAPACITY slots with per-slot sequence
 * numbers, backed by a mutex-guarded overflow that takes tasks while the ring is full. FIFO holds across both:
 * once the overflow holds anything, every push goes to the overflow until the consumer has drained it.
 *
 * lk_ring_length and lk_ring_is_empty count the same things (ring slots claimed but not consumed, plus
 * overflow tasks not yet consumed) and always agree: is_empty(r) == (length(r) == 0) when nothing races.
 *
 * Threading: push from any thread; pop, pop_batch from one consumer thread; length and is_empty from any
 * thread (a snapshot; exact when no push or pop runs concurrently).
 */
#ifndef LK_RING_H
#define LK_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lk_task.h"

/* Slots in a production ring. A power of two. */
#define LK_RING_CAPACITY 4096u

typedef struct lk_ring lk_ring;

/* Creates an empty ring of LK_RING_CAPACITY slots. Returns 0 or -ENOMEM. */
int lk_ring_create(lk_ring **out);

/*
 * Tests only: a ring of `capacity` slots (a power of two, 2 ... 2^20) whose free-running head and tail start
 * at `start`, so every slot position and counter wrap can be exercised. Returns 0, -EINVAL or -ENOMEM.
 */
int lk_ring_create_for_testing(lk_ring **out, uint32_t capacity, uint64_t start);

void lk_ring_destroy(lk_ring *r);

/* Appends a copy of *task (to the ring, or to the overflow while the ring is full or the overflow non-empty).
 * Returns 0, or -ENOMEM if the overflow could not grow (nothing was queued). */
int lk_ring_push(lk_ring *r, const lk_task *task);

/* Consumer: oldest task first. BUSY when a producer has claimed the next slot but not yet published it. */
lk_pop_status lk_ring_pop(lk_ring *r, lk_task *out);

/* Consumer: pops up to max tasks; *busy (may be NULL) as for lk_mpsc_pop_batch. */
size_t lk_ring_pop_batch(lk_ring *r, lk_task *out, size_t max, bool *busy);

size_t lk_ring_length(lk_ring *r);
bool lk_ring_is_empty(lk_ring *r);
/* The consumer thread gives the consumer side up: the next consumer-side call may come from another thread
 * (ordered after this call by the caller's own synchronisation, e.g. a join or a mutex). Debug builds
 * (LK_DEBUG) record the consumer thread on its first call and stop the process, naming the call, when
 * another thread makes one without this hand-over; release builds check nothing. */
void lk_ring_consumer_hand_over(lk_ring *r);
uint32_t lk_ring_capacity(const lk_ring *r);
/* Tasks currently waiting in the overflow (not yet consumed). */
size_t lk_ring_overflow_length(lk_ring *r);

/*
 * Tests only: the two halves of a ring push. claim takes the next position (0, or -EBUSY when the ring is
 * full or the overflow is active) without publishing it; publish completes it. Every claim must be
 * published, or the consumer stays BUSY at that position forever.
 */
int lk_ring_claim_for_testing(lk_ring *r, uint64_t *position);
void lk_ring_publish_for_testing(lk_ring *r, uint64_t position, const lk_task *task);

#endif
