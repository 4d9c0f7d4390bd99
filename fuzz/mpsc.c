/*
 * fuzz/mpsc.c — libFuzzer harness for the lock-free MPSC queue (lk_mpsc), directly or through the
 * lk_ingress facade, checked after every operation against a FIFO model.
 *
 * Input: byte 0 selects the front end (bit 0 set: lk_ingress of kind LK_INGRESS_LOCK_FREE; the split push
 * and the pool counters are then out of reach and those checks are skipped). Then operations, each an opcode
 * byte b (operation b % 9, variant b / 9) followed by its operands:
 *   0 push one task
 *   1 push a burst of 1 + u16 % 1024 tasks (grows the node pool slab by slab); odd variants with every node
 *     allocation failing (lk_fault.h): a push may then fail with -ENOMEM, queueing nothing, and the pool
 *     must not grow
 *   2 pop one
 *   3 pop_batch with max = u8 (0 allowed); odd variants pass busy = NULL
 *   4 pop until the queue stops answering OK
 *   5 begin a split push (lk_mpsc_push_begin_for_testing), leaving it in the busy window; at most
 *     MAX_OPEN open at once (a plain push when that is reached, or through the facade)
 *   6 finish the open split push number u8 % open (any order, not just the order they began in)
 *   7 1 + u8 rounds of push one, pop one (cycles nodes through the consumer's return batches)
 *   8 pop 1 + u16 % 1024 times (many pops after many pushes: batched returns to the pool)
 * Decoding stops early once WORK_BUDGET is spent, so that no input runs for long. At the end every open push
 * is finished (newest first), the queue is drained and must match the model.
 *
 * The model (lk_mpsc.h, mpsc.c) holds every task whose push has exchanged the tail, in tail order; an entry
 * is `ready` once its link store is done. The consumer can hand out the oldest task only when it is linked
 * and, unless it is the only task, so is the next one (a node is released only once its successor is
 * linked). Expected results:
 *   pop:      EMPTY if the model is empty; OK with the oldest task if it may be handed out; BUSY otherwise
 *             (never EMPTY while a push is open, never a task that skips the open push);
 *   push:     1 exactly when the model was empty (open pushes count), else 0;
 *   is_empty: the model is empty;
 *   pool:     nodes in use == model length, the slab sizes add up, and the pool never grew without need.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "lk_fault.h"
#include "lk_ingress.h"
#include "lk_mpsc.h"
#include "model_fifo.h"

#define MAX_OPEN 8              /* split pushes open at once */
#define MAX_QUEUED 2100         /* pushes are skipped beyond this (the pool still reaches its fourth slab) */
#define WORK_BUDGET (1u << 14)  /* queue operations per input, plus one per 16 pool nodes walked */
#define SLAB0 256u              /* mpsc.c: slab k holds SLAB0 << k nodes */
#define RETURN_HELD 31u         /* mpsc.c: the consumer keeps up to LK_MPSC_RETURN_BATCH - 1 popped nodes */
#define POOL_SMALL 768u         /* two slabs: the pool is walked after every operation up to this size */
#define POOL_CHECK_EVERY 8u     /* and after every 8th operation beyond it */

typedef struct open_push {
    void *prev;
    void *node;
    uint64_t seq;
} open_push;

typedef struct harness {
    lk_mpsc *q;       /* set when driving the queue directly */
    lk_ingress *g;    /* set when driving it through the facade */
    model_fifo model;
    uint64_t next_seq;
    size_t peak; /* most tasks ever queued at once (open pushes included) */
    open_push open[MAX_OPEN];
    size_t open_count;
    size_t work; /* spent of WORK_BUDGET */
    size_t ops;  /* operations decoded so far */
    uint64_t nodes_allocated; /* as of the last pool check */
} harness;

#include "queue_ops.h" /* after struct harness: the shared operations use its counters */

static size_t queued(const harness *h) { return h->model.length; }

/* The pop status the model predicts. */
static lk_pop_status expected_pop(harness *h) {
    if (h->model.length == 0) return LK_POP_EMPTY;
    if (!model_fifo_at(&h->model, 0)->ready) return LK_POP_BUSY;
    if (h->model.length == 1 || model_fifo_at(&h->model, 1)->ready) return LK_POP_OK;
    return LK_POP_BUSY;
}

static void note_queued(harness *h) {
    if (h->model.length > h->peak) h->peak = h->model.length;
}

static int push_raw(harness *h, const lk_task *t) {
    return h->q ? lk_mpsc_push(h->q, t) : lk_ingress_push(h->g, t, NULL);
}

/* The queue itself reports "was empty"; lk_ingress_push reports only success (it notifies instead). */
static void model_pushed(harness *h, uint64_t seq, int rc) {
    int want = h->q ? (h->model.length == 0 ? 1 : 0) : 0;
    FUZZ_CHECK(rc == want, "push of task %llu returned %d, model says %d (%zu queued)", (unsigned long long)seq,
               rc, want, h->model.length);
    model_fifo_push(&h->model, seq, true);
    note_queued(h);
}

/* A refusal for memory is allowed whenever node allocation fails. */
static void model_refused(harness *h) { (void)h; }

static void push_many(harness *h, unsigned n) {
    for (; n > 0; n--) push_one(h);
}

/* n pushes while every node allocation fails: each either succeeds from the pool or fails with -ENOMEM and
 * queues nothing; the pool does not grow. */
static void push_without_memory(harness *h, unsigned n) {
    lk_mpsc_stats before, after;
    if (h->q) lk_mpsc_stats_get(h->q, &before);
    lk_fault_arm(LK_FAULT_NODE_ALLOC, ENOMEM, 0, LK_FAULT_FOREVER);
    for (; n > 0; n--) push_task(h, true);
    lk_fault_disarm(LK_FAULT_NODE_ALLOC);
    if (!h->q) return;
    lk_mpsc_stats_get(h->q, &after);
    FUZZ_CHECK(after.nodes_allocated == before.nodes_allocated, "the pool grew from %llu to %llu nodes while "
               "allocation failed", (unsigned long long)before.nodes_allocated,
               (unsigned long long)after.nodes_allocated);
}

/* Checks one popped task (status s, payload *t) against the model, and consumes it from the model. */
static void check_popped(harness *h, lk_pop_status s, const lk_task *t) {
    lk_pop_status want = expected_pop(h);
    FUZZ_CHECK(s == want, "pop returned %d, model says %d (%zu queued, %zu open)", (int)s, (int)want,
               h->model.length, h->open_count);
    if (s == LK_POP_OK) model_fifo_pop_expecting(&h->model, t);
}

static lk_pop_status pop_raw(harness *h, lk_task *t) {
    return h->q ? lk_mpsc_pop(h->q, t) : lk_ingress_pop(h->g, t);
}

static void pop_batch(harness *h, size_t max, bool want_busy_flag) {
    lk_task out[256];
    bool busy = false;
    bool *busy_arg = want_busy_flag ? &busy : NULL;
    size_t n = h->q ? lk_mpsc_pop_batch(h->q, out, max, busy_arg) : lk_ingress_pop_batch(h->g, out, max, busy_arg);
    check_batch(h, out, n, max, busy_arg);
}

static void begin_split_push(harness *h) {
    if (h->q == NULL || h->open_count == MAX_OPEN) {
        push_one(h);
        return;
    }
    if (h->model.length >= MAX_QUEUED) return;
    open_push *p = &h->open[h->open_count];
    p->seq = h->next_seq++;
    lk_task t = fuzz_task(p->seq);
    int rc = lk_mpsc_push_begin_for_testing(h->q, &t, &p->prev, &p->node);
    FUZZ_CHECK(rc == 0, "push_begin returned %d", rc);
    h->open_count++;
    model_fifo_push(&h->model, p->seq, false);
    note_queued(h);
}

static void finish_split_push(harness *h, size_t which) {
    if (h->open_count == 0) return;
    which %= h->open_count;
    open_push p = h->open[which];
    h->open[which] = h->open[--h->open_count];
    lk_mpsc_push_finish_for_testing(p.prev, p.node);
    /* The model holds consecutive sequence numbers (pushes append, pops take the oldest, and an open push's
     * task cannot have been popped), so the entry's index follows from the oldest one's. */
    size_t i = (size_t)(p.seq - model_fifo_at(&h->model, 0)->seq);
    model_entry *e = model_fifo_at(&h->model, i);
    FUZZ_CHECK(e->seq == p.seq && !e->ready, "model entry %zu is %llu (ready %d), expected open push %llu", i,
               (unsigned long long)e->seq, e->ready, (unsigned long long)p.seq);
    e->ready = true;
}

static void check_state(harness *h, bool final) {
    bool empty = h->q ? lk_mpsc_is_empty(h->q) : lk_ingress_is_empty(h->g);
    FUZZ_CHECK(empty == (h->model.length == 0), "is_empty = %d with %zu queued (%zu open)", empty,
               h->model.length, h->open_count);
    /* The pool counters are walked node by node: after every operation while the pool is small, after every
     * POOL_CHECK_EVERY-th once it has grown, and at the end. */
    if (h->q == NULL) return;
    if (!final && h->nodes_allocated > POOL_SMALL && h->ops % POOL_CHECK_EVERY != 0) return;
    lk_mpsc_stats s;
    lk_mpsc_stats_get(h->q, &s);
    h->nodes_allocated = s.nodes_allocated;
    h->work += (size_t)(s.nodes_allocated / 16);
    FUZZ_CHECK(s.slabs < 24, "%llu slabs", (unsigned long long)s.slabs);
    uint64_t allocated = (uint64_t)SLAB0 * ((1ull << s.slabs) - 1u);
    FUZZ_CHECK(s.nodes_allocated == allocated, "%llu nodes allocated in %llu slabs, expected %llu",
               (unsigned long long)s.nodes_allocated, (unsigned long long)s.slabs, (unsigned long long)allocated);
    FUZZ_CHECK(s.nodes_free + s.nodes_in_use == s.nodes_allocated, "free %llu + in use %llu != allocated %llu",
               (unsigned long long)s.nodes_free, (unsigned long long)s.nodes_in_use,
               (unsigned long long)s.nodes_allocated);
    FUZZ_CHECK(s.nodes_in_use == h->model.length, "%llu nodes in use, %zu tasks queued",
               (unsigned long long)s.nodes_in_use, h->model.length);
    FUZZ_CHECK(s.nodes_allocated >= h->peak, "%llu nodes allocated, %zu were queued at once",
               (unsigned long long)s.nodes_allocated, h->peak);
    if (s.slabs > 0) {
        /* The last slab was made when the pool was empty: every node of the earlier slabs was queued (at most
         * peak - 1 besides the push that grew the pool) or held in the consumer's return batch. */
        uint64_t before = (uint64_t)SLAB0 * ((1ull << (s.slabs - 1)) - 1u);
        FUZZ_CHECK(before + 1 <= h->peak + RETURN_HELD,
                   "grew to %llu slabs with %llu nodes already made, though at most %zu were ever queued",
                   (unsigned long long)s.slabs, (unsigned long long)before, h->peak);
    }
}

/* Opcode b % 9 (see the top of this file). */
static void op_pop_batch(harness *h, fuzz_input *in, unsigned variant) {
    pop_batch(h, fuzz_u8(in), (variant & 1u) == 0);
}

static void op_begin_split_push(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    begin_split_push(h);
}

static void op_finish_split_push(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    finish_split_push(h, fuzz_u8(in));
}

static const fuzz_op operations[] = {fuzz_op_push_one, fuzz_op_push_burst, fuzz_op_pop_one, op_pop_batch,
                                     fuzz_op_pop_until_not_ok, op_begin_split_push, op_finish_split_push,
                                     fuzz_op_push_pop_rounds, fuzz_op_pop_many};

static void check_after_op(harness *h) { check_state(h, false); }

static void pop_a_batch(harness *h) { pop_batch(h, 256, true); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const fuzz_driver driver = {.ops = operations, .count = sizeof operations / sizeof operations[0],
                                       .budget = WORK_BUDGET, .check = check_after_op};
    fuzz_input in = {.data = data, .size = size, .at = 0};
    harness h = {0};
    model_fifo_init(&h.model);
    int rc = (fuzz_u8(&in) & 1) ? lk_ingress_create(&h.g, LK_INGRESS_LOCK_FREE, NULL) : lk_mpsc_create(&h.q);
    FUZZ_CHECK(rc == 0, "create returned %d", rc);
    check_state(&h, true);

    fuzz_drive(&driver, &h, &in);

    while (h.open_count > 0) {
        finish_split_push(&h, h.open_count - 1);
        check_state(&h, true);
    }
    fuzz_drain(&h, queued, pop_a_batch);
    check_state(&h, true);
    if (h.q) lk_mpsc_destroy(h.q);
    if (h.g) lk_ingress_destroy(h.g);
    model_fifo_free(&h.model);
    return 0;
}
