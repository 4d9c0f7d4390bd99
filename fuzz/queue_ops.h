/*
 * queue_ops.h — the operations the FIFO harnesses (mpsc, chunkq, ring) share, in driver.h's fuzz_op form.
 *
 * A FIFO harness has `uint64_t next_seq` (the next task's sequence number) besides driver.h's counters, a
 * MAX_QUEUED bound, and defines the primitives below; this header builds the push and the batch check on them
 * and the shared operations on those:
 *   push_raw(h, t)               the structure's push of *t; returns its result
 *   pop_raw(h, t)                the structure's pop into *t; returns its status
 *   model_pushed(h, seq, rc)     the model's side of a push that was not refused for memory: checks rc, queues
 *   model_refused(h)             the model's side of a push refused with -ENOMEM: checks it was allowed to be
 *   queued(h)                    tasks the model holds
 *   expected_pop(h)              the status the next pop must have
 *   check_popped(h, s, t)        checks a pop's status and task against the model, and consumes the task
 *   push_many(h, n)              n pushes, with whatever the harness checks around a burst
 *   push_without_memory(h, n)    n pushes while the structure's allocations fail (lk_fault.h)
 */
#ifndef LK_FUZZ_QUEUE_OPS_H
#define LK_FUZZ_QUEUE_OPS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "lk_task.h"

static int push_raw(harness *h, const lk_task *t);
static void model_pushed(harness *h, uint64_t seq, int rc);
static void model_refused(harness *h);
static lk_pop_status pop_raw(harness *h, lk_task *t);
static size_t queued(const harness *h);
static lk_pop_status expected_pop(harness *h);
static void check_popped(harness *h, lk_pop_status s, const lk_task *t);
static void push_many(harness *h, unsigned n);
static void push_without_memory(harness *h, unsigned n);

/* Pushes the next task, unless MAX_QUEUED are queued. With `may_fail` (allocations armed to fail) the push
 * may be refused with -ENOMEM, which must leave the structure as it was. */
static inline void push_task(harness *h, bool may_fail) {
    h->work++;
    if (queued(h) >= MAX_QUEUED) return;
    uint64_t seq = h->next_seq;
    lk_task t = fuzz_task(seq);
    int rc = push_raw(h, &t);
    if (may_fail && rc == -ENOMEM) {
        model_refused(h);
        return;
    }
    h->next_seq++;
    model_pushed(h, seq, rc);
}

static inline void push_one(harness *h) { push_task(h, false); }

/* One pop, checked against the model. */
static inline lk_pop_status pop_one(harness *h) {
    h->work++;
    lk_task t = {{0}};
    lk_pop_status s = pop_raw(h, &t);
    check_popped(h, s, &t);
    return s;
}

/* Checks a pop_batch that returned n of at most max tasks in out[], and consumes them from the model: each is
 * the task the model hands out next; the batch stopped early only when the model has nothing it may hand out;
 * and *busy (NULL when not asked for) is set exactly when that is because of a push still in progress. */
static inline void check_batch(harness *h, const lk_task *out, size_t n, size_t max, const bool *busy) {
    FUZZ_CHECK(n <= max, "pop_batch returned %zu for max %zu", n, max);
    h->work += 1 + n;
    for (size_t i = 0; i < n; i++) check_popped(h, LK_POP_OK, &out[i]);
    lk_pop_status next = expected_pop(h);
    if (n < max) FUZZ_CHECK(next != LK_POP_OK, "pop_batch stopped at %zu of %zu with a task poppable", n, max);
    if (busy != NULL) {
        bool want = n < max && next == LK_POP_BUSY;
        FUZZ_CHECK(*busy == want, "pop_batch busy = %d, model says %d (%zu popped of max %zu)", *busy, want, n,
                   max);
    }
}

/* One push. */
static inline void fuzz_op_push_one(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    push_one(h);
}

/* A burst of 1 + u16 % 1024 pushes; odd variants with every allocation failing. */
static inline void fuzz_op_push_burst(harness *h, fuzz_input *in, unsigned variant) {
    unsigned n = 1u + fuzz_u16(in) % 1024u;
    if (variant & 1u)
        push_without_memory(h, n);
    else
        push_many(h, n);
}

/* One pop. */
static inline void fuzz_op_pop_one(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    pop_one(h);
}

/* Pops until a pop does not answer OK. */
static inline void fuzz_op_pop_until_not_ok(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    while (pop_one(h) == LK_POP_OK) {}
}

/* 1 + u8 rounds of one push and one pop (a short queue walked across the structure's boundaries). */
static inline void fuzz_op_push_pop_rounds(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    for (unsigned n = 1u + fuzz_u8(in); n > 0; n--) {
        push_one(h);
        pop_one(h);
    }
}

/* 1 + u16 % 1024 pops (after many pushes: the structure hands back its storage in bulk). */
static inline void fuzz_op_pop_many(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    for (unsigned n = 1u + fuzz_u16(in) % 1024u; n > 0; n--) pop_one(h);
}

#endif
