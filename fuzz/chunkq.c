/*
 * fuzz/chunkq.c — libFuzzer harness for the chunked mutex queue (lk_chunkq), directly or through the
 * lk_ingress facade, checked after every operation against a FIFO model.
 *
 * Input: byte 0 selects the front end (bit 0 set: lk_ingress of kind LK_INGRESS_CHUNKED; length and the
 * chunk counters are then out of reach and those checks are skipped). Then operations, each an opcode byte b
 * (operation b % 7) followed by its operands:
 *   0 push one task
 *   1 push a burst of 1 + u16 % 1024 tasks (fills chunks of LK_CHUNKQ_CHUNK_SLOTS and links new ones); with
 *     bit 0 of b / 7 set, every chunk allocation fails (lk_fault.h): a push may then fail with -ENOMEM,
 *     queueing nothing, and no chunk is allocated
 *   2 pop one
 *   3 pop_batch with max = u16 % 512 (0 allowed; large enough to span several chunks)
 *   4 pop until EMPTY
 *   5 1 + u8 rounds of push one, pop one (walks a small queue across chunk boundaries)
 *   6 pop 1 + u16 % 1024 times (drained chunks go to the spare list, or back to malloc)
 * Decoding stops early once WORK_BUDGET is spent, so that no input runs for long. At the end the queue is
 * drained and must match the model.
 *
 * Expected results (lk_chunkq.h): push returns 1 exactly when the queue was empty; pop is OK with the oldest
 * task or EMPTY (never BUSY); pop_batch returns min(max, length) tasks in order; length and is_empty agree
 * with the model. Chunk counters (chunkq.c): the spare list holds at most SPARE_MAX chunks; the chunks in
 * the list cover the queued tasks with at most one partly consumed chunk in front; malloc is only called
 * when no spare chunk is left.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "lk_chunkq.h"
#include "lk_fault.h"
#include "lk_ingress.h"
#include "model_fifo.h"

#define MAX_QUEUED 6000 /* pushes are skipped beyond this */
#define WORK_BUDGET (1u << 16) /* queue operations per input */
#define SPARE_MAX 8u    /* chunkq.c: LK_CHUNKQ_SPARE_MAX */
#define BATCH_MAX 512u

typedef struct harness {
    lk_chunkq *q;    /* set when driving the queue directly */
    lk_ingress *g;   /* set when driving it through the facade */
    model_fifo model;
    uint64_t next_seq;
    size_t work; /* spent of WORK_BUDGET */
    size_t ops;
} harness;

#include "queue_ops.h" /* after struct harness: the shared operations use its counters */

static void get_stats(harness *h, lk_chunkq_stats *s) {
    if (h->q)
        lk_chunkq_stats_get(h->q, s);
    else
        *s = (lk_chunkq_stats){0};
}

static size_t queued(const harness *h) { return h->model.length; }

static int push_raw(harness *h, const lk_task *t) {
    return h->q ? lk_chunkq_push(h->q, t) : lk_ingress_push(h->g, t, NULL);
}

/* The queue itself reports "was empty"; lk_ingress_push reports only success (it notifies instead). */
static void model_pushed(harness *h, uint64_t seq, int rc) {
    int want = h->q ? (h->model.length == 0 ? 1 : 0) : 0;
    FUZZ_CHECK(rc == want, "push of task %llu returned %d, model says %d (%zu queued)", (unsigned long long)seq,
               rc, want, h->model.length);
    model_fifo_push(&h->model, seq, true);
}

/* A refusal for memory is allowed whenever chunk allocation fails. */
static void model_refused(harness *h) { (void)h; }

/* n pushes while every chunk allocation fails: each either succeeds in a chunk the queue has (or a spare) or
 * fails with -ENOMEM and queues nothing; no chunk is allocated. */
static void push_without_memory(harness *h, unsigned n) {
    lk_chunkq_stats before, after;
    get_stats(h, &before);
    lk_fault_arm(LK_FAULT_CHUNK_ALLOC, ENOMEM, 0, LK_FAULT_FOREVER);
    for (; n > 0; n--) push_task(h, true);
    lk_fault_disarm(LK_FAULT_CHUNK_ALLOC);
    get_stats(h, &after);
    FUZZ_CHECK(after.chunks_allocated == before.chunks_allocated, "%llu chunks allocated while allocation failed",
               (unsigned long long)(after.chunks_allocated - before.chunks_allocated));
}

/* A push-only operation: a chunk may be malloc'd only once the spare list is used up. */
static void push_many(harness *h, unsigned n) {
    lk_chunkq_stats before, after;
    get_stats(h, &before);
    for (; n > 0; n--) push_one(h);
    get_stats(h, &after);
    if (after.chunks_allocated > before.chunks_allocated)
        FUZZ_CHECK(after.chunks_spare == 0, "malloc'd %llu chunks while %llu were spare",
                   (unsigned long long)(after.chunks_allocated - before.chunks_allocated),
                   (unsigned long long)after.chunks_spare);
}

/* The queue never answers BUSY: a pop finds a task exactly when one is queued. */
static lk_pop_status expected_pop(harness *h) { return h->model.length > 0 ? LK_POP_OK : LK_POP_EMPTY; }

static void check_popped(harness *h, lk_pop_status s, const lk_task *t) {
    lk_pop_status want = expected_pop(h);
    FUZZ_CHECK(s == want, "pop returned %d, model says %d (%zu queued)", (int)s, (int)want, h->model.length);
    if (s == LK_POP_OK) model_fifo_pop_expecting(&h->model, t);
}

static lk_pop_status pop_raw(harness *h, lk_task *t) {
    return h->q ? lk_chunkq_pop(h->q, t) : lk_ingress_pop(h->g, t);
}

/* The direct queue has no busy flag; the facade's must stay clear (a chunked queue is never busy). */
static void pop_batch(harness *h, size_t max) {
    lk_task out[BATCH_MAX];
    bool busy = true;
    size_t n = h->q ? lk_chunkq_pop_batch(h->q, out, max) : lk_ingress_pop_batch(h->g, out, max, &busy);
    check_batch(h, out, n, max, h->q ? NULL : &busy);
}

static void check_state(harness *h) {
    bool empty = h->q ? lk_chunkq_is_empty(h->q) : lk_ingress_is_empty(h->g);
    FUZZ_CHECK(empty == (h->model.length == 0), "is_empty = %d with %zu queued", empty, h->model.length);
    if (h->q == NULL) return;
    size_t length = lk_chunkq_length(h->q);
    FUZZ_CHECK(length == h->model.length, "length %zu, model says %zu", length, h->model.length);
    lk_chunkq_stats s;
    lk_chunkq_stats_get(h->q, &s);
    FUZZ_CHECK(s.chunks_spare <= SPARE_MAX, "%llu spare chunks", (unsigned long long)s.chunks_spare);
    FUZZ_CHECK(s.chunks_live >= s.chunks_spare && s.chunks_allocated >= s.chunks_live,
               "allocated %llu, live %llu, spare %llu", (unsigned long long)s.chunks_allocated,
               (unsigned long long)s.chunks_live, (unsigned long long)s.chunks_spare);
    /* Chunks in the list: enough for the tasks, plus at most one because the head chunk is partly consumed
     * (or, with nothing queued, kept rewound for the next push). */
    uint64_t listed = s.chunks_live - s.chunks_spare;
    uint64_t needed = (h->model.length + LK_CHUNKQ_CHUNK_SLOTS - 1) / LK_CHUNKQ_CHUNK_SLOTS;
    FUZZ_CHECK(listed >= needed && listed <= needed + 1, "%llu chunks listed for %zu tasks",
               (unsigned long long)listed, h->model.length);
}

/* Opcode b % 7 (see the top of this file). Operation 0 is a burst of one: its allocation is checked too. */
static void op_push_one(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    push_many(h, 1);
}

static void op_pop_batch(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    pop_batch(h, fuzz_u16(in) % BATCH_MAX);
}

static const fuzz_op operations[] = {op_push_one, fuzz_op_push_burst, fuzz_op_pop_one, op_pop_batch,
                                     fuzz_op_pop_until_not_ok, fuzz_op_push_pop_rounds, fuzz_op_pop_many};

static void pop_a_batch(harness *h) { pop_batch(h, BATCH_MAX); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const fuzz_driver driver = {.ops = operations, .count = sizeof operations / sizeof operations[0],
                                       .budget = WORK_BUDGET, .check = check_state};
    fuzz_input in = {.data = data, .size = size, .at = 0};
    harness h = {0};
    model_fifo_init(&h.model);
    int rc = (fuzz_u8(&in) & 1) ? lk_ingress_create(&h.g, LK_INGRESS_CHUNKED, NULL) : lk_chunkq_create(&h.q);
    FUZZ_CHECK(rc == 0, "create returned %d", rc);
    check_state(&h);

    fuzz_drive(&driver, &h, &in);

    fuzz_drain(&h, queued, pop_a_batch);
    check_state(&h);
    FUZZ_CHECK(pop_one(&h) == LK_POP_EMPTY, "drained queue not empty");
    if (h.q) lk_chunkq_destroy(h.q);
    if (h.g) lk_ingress_destroy(h.g);
    model_fifo_free(&h.model);
    return 0;
}
