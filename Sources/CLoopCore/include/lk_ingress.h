/*
 * lk_ingress.h — the queue that carries external tasks from other threads to a loop, behind one interface.
 * Three kinds, chosen when the queue is created (each is one file behind the ops table of ingress_impl.h):
 *
 *   LK_INGRESS_PER_PRODUCER  every producer thread gets a single-producer queue of its own (lk_spscq),
 *                            registered on its first push and announced to the loop when it gains work; a
 *                            push is a copy, a release store and a fence on lines no other producer writes.
 *   LK_INGRESS_LOCK_FREE     Vyukov's MPSC list (lk_mpsc): one atomic exchange of a shared tail per push.
 *   LK_INGRESS_CHUNKED       a mutex-guarded list of chunks (lk_chunkq).
 *
 * Wakeups: a queue created with a wake handshake (lk_wake.h) notifies the loop itself when a push needs it,
 * so a caller never calls lk_wake_notify after a push. The lock-free and chunked kinds notify on every push
 * (a fence and a load; a syscall only when the loop sleeps). The per-producer kind notifies only when it
 * announces a queue the loop does not hold; the loop gives its queues up only inside
 * lk_ingress_prepare_park (or when one stays idle), which is what makes the cheaper push safe (the
 * protocol is in ingress_pp.c; spin/ingress.pml model-checks it).
 *
 * Threading: push from any thread; pop_batch, pop, is_empty, prepare_park and finish_park from the loop
 * (one consumer thread at a time); create and destroy with no push or pop running. Threads may exit at
 * any time, also after the queue is destroyed: a per-producer queue is drained, then reclaimed.
 */
#ifndef LK_INGRESS_H
#define LK_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lk_gate.h"
#include "lk_task.h"
#include "lk_wake.h"

typedef enum lk_ingress_kind {
    LK_INGRESS_LOCK_FREE = 0,    /* lk_mpsc */
    LK_INGRESS_CHUNKED = 1,      /* lk_chunkq */
    LK_INGRESS_PER_PRODUCER = 2, /* one lk_spscq per producer thread */
    LK_INGRESS_KIND_COUNT
} lk_ingress_kind;

typedef struct lk_ingress lk_ingress;

/* Creates an empty queue. `wake` (may be NULL: nothing to notify) must outlive the queue. Returns 0,
 * -EINVAL for an unknown kind, or -ENOMEM. */
int lk_ingress_create(lk_ingress **out, lk_ingress_kind kind, lk_wake *wake);
/* Frees the queue. Tasks still queued are dropped without being looked at: pop them first. */
void lk_ingress_destroy(lk_ingress *q);
lk_ingress_kind lk_ingress_get_kind(const lk_ingress *q);
/* "per-producer", "lock-free", "chunked"; NULL for an unknown kind. */
const char *lk_ingress_kind_name(lk_ingress_kind kind);

/*
 * Any thread: queues a copy of *task, then notifies the loop if it may be asleep. Returns 0 when queued,
 * or -ENOMEM (nothing queued). *wake_rc (may be NULL) receives the notification's result: 0 when no
 * syscall was made, 1 for an eventfd write, -errno when that write failed (lk_wake_notify; the task stays
 * queued).
 */
int lk_ingress_push(lk_ingress *q, const lk_task *task, int *wake_rc);

/*
 * Any thread: lk_ingress_push of the task {w0, w1, w2} inside the admission gate (lk_gate_enter ...
 * lk_gate_exit): a submit in one call, the task in registers (a task passed through memory costs the
 * caller's stores and the callee's loads on the hottest path).
 * Returns < 0 when nothing was queued: -ESHUTDOWN (the gate is closed) or -ENOMEM. Returns >= 0 when the
 * task is queued (the gate was open: the closer's final drain finds it): 0, or LK_SUBMIT_WOKE when this call
 * wrote the eventfd, or LK_SUBMIT_WAKE_FAILED | errno when that write failed (lk_wake_notify's -errno; the
 * task stays queued).
 */
#define LK_SUBMIT_WOKE 1
#define LK_SUBMIT_WAKE_FAILED 0x10000
int lk_ingress_submit(lk_ingress *q, lk_gate *gate, uintptr_t w0, uintptr_t w1, uintptr_t w2);

/* Any thread: lk_ingress_submit without the admission gate (for a caller that admits work its own way, and
 * the benchmarks' C-level hand-off). Same results, -ESHUTDOWN aside. */
int lk_ingress_push_words(lk_ingress *q, uintptr_t w0, uintptr_t w1, uintptr_t w2);

/* Loop: moves up to max tasks into out; per-producer FIFO, producers served round robin. *busy (may be
 * NULL) is set when a push was caught mid-flight (lock-free kind only): not empty, retry soon. */
size_t lk_ingress_pop_batch(lk_ingress *q, lk_task *out, size_t max, bool *busy);
/* Loop: pop_batch for one task. */
lk_pop_status lk_ingress_pop(lk_ingress *q, lk_task *out);
/* Loop: true only when nothing is queued and no push is in progress. */
bool lk_ingress_is_empty(lk_ingress *q);
/* The consumer thread gives the consumer side up: the next consumer-side call (pop, is_empty, prepare_park, finish_park) may come from another thread
 * (ordered after this call by the caller's own synchronisation, e.g. a join or a mutex). Debug builds
 * (LK_DEBUG) record the consumer thread on its first call and stop the process, naming the call, when
 * another thread makes one without this hand-over; release builds check nothing. */
void lk_ingress_consumer_hand_over(lk_ingress *q);

/*
 * Loop, around a sleep: prepare_park comes before lk_wake_prepare_park (whose fence orders it), and
 * finish_park after the sleep, or after deciding not to sleep, always paired. Between the two the loop
 * must re-check the queue (lk_ingress_is_empty) after the wake handshake's fence, as for every queue.
 */
void lk_ingress_prepare_park(lk_ingress *q);
void lk_ingress_finish_park(lk_ingress *q);

/* Per-producer kind: producer queues registered and not yet reclaimed (0 for the other kinds). Any thread;
 * takes the registry lock. */
size_t lk_ingress_producer_count(lk_ingress *q);

/*
 * Tests only (per-producer kind; NULL / -EINVAL for the others): a producer handle not bound to the calling
 * thread, so one thread can play many producers. push_from is lk_ingress_push through `p`; exit does what
 * the exit of p's thread does (the loop then drains and reclaims p; p must not be used again).
 */
typedef struct lk_producer lk_producer;
lk_producer *lk_ingress_attach_producer_for_testing(lk_ingress *q);
int lk_ingress_push_from_for_testing(lk_ingress *q, lk_producer *p, const lk_task *task, int *wake_rc);
void lk_ingress_exit_producer_for_testing(lk_producer *p);
/* Benchmarks only: false keeps every per-producer push fenced (no fast mode), to measure what fast mode
 * saves. Process-wide; set it while no per-producer ingress is in use. */
void lk_ingress_fast_mode_for_testing(bool enabled);

#endif
