/*
 * fuzz/ring.c — libFuzzer harness for the microtask ring (lk_ring) with its overflow, checked after every
 * operation against a model of the ring's positions and the overflow.
 *
 * Input: byte 0 gives the ring (lk_ring_create_for_testing): capacity 2 << (b % 6), i.e. 2 ... 64, so the
 * overflow is entered all the time; start position by (b / 6) % 4:
 *   0: 2^64 - u8    1: 2^64 - u16    2: 2^63 - u8 (the signed midpoint)    3: any u64
 * so that the free-running positions and slot sequence numbers wrap. Then operations, each an opcode byte b
 * (operation b % 8, variant b / 8) followed by its operands:
 *   0 push one task
 *   1 push a burst of 1 + u8 % 200 tasks (fills the ring, then the overflow); odd variants with every
 *     growth of the overflow failing (lk_fault.h): a push that needs it fails with -ENOMEM, queueing nothing
 *   2 pop one
 *   3 pop_batch with max = u8 % 160 (0 allowed); odd variants pass busy = NULL
 *   4 pop until the ring stops answering OK
 *   5 claim a position (lk_ring_claim_for_testing) without publishing it
 *   6 publish the open claim number u8 % open (any order: later positions may publish first)
 *   7 1 + u8 rounds of push one, pop one
 * Decoding stops early once WORK_BUDGET is spent, so that no input runs for long. At the end every open claim
 * is published (newest first), the ring is drained and must match the model.
 *
 * The model (lk_ring.h, ring.c): `ring` holds the positions head ... tail - 1 in order, each ready once
 * published; `overflow` holds the overflow's tasks. Expected results:
 *   push:     into the ring when the overflow is empty and fewer than capacity positions are claimed,
 *             otherwise appended to the overflow;
 *   claim:    -EBUSY when the overflow is non-empty or the ring is full, else 0 and position tail;
 *   pop:      the ring's oldest position if published; BUSY if it is claimed but not published; the
 *             overflow's oldest task when the ring is empty; EMPTY when both are;
 *   length:   ring positions claimed + overflow tasks; is_empty == (length == 0); overflow_length.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "lk_fault.h"
#include "lk_ring.h"
#include "model_fifo.h"

#define MAX_CAPACITY 64u
#define BATCH_MAX 160u
#define MAX_QUEUED 4000 /* pushes are skipped beyond this */
#define WORK_BUDGET (1u << 16) /* ring operations per input */

typedef struct harness {
    lk_ring *r;
    uint32_t capacity;
    uint64_t head;        /* the model's next position to consume */
    model_fifo ring;      /* positions head, head + 1, ...: claimed, ready once published */
    model_fifo overflow;  /* tasks in the overflow, all ready */
    uint64_t next_seq;
    uint64_t open[MAX_CAPACITY]; /* claimed, unpublished positions */
    size_t open_count;
    size_t work; /* spent of WORK_BUDGET */
    size_t ops;
} harness;

#include "queue_ops.h" /* after struct harness: the shared operations use its counters */

static size_t queued(const harness *h) { return h->ring.length + h->overflow.length; }

/* The status of the next pop, as the model predicts it. */
static lk_pop_status expected_pop(harness *h) {
    if (h->ring.length > 0) return model_fifo_at(&h->ring, 0)->ready ? LK_POP_OK : LK_POP_BUSY;
    return h->overflow.length > 0 ? LK_POP_OK : LK_POP_EMPTY;
}

static int push_raw(harness *h, const lk_task *t) { return lk_ring_push(h->r, t); }

/* Into the ring while the overflow is empty and a slot is free, otherwise into the overflow. */
static void model_pushed(harness *h, uint64_t seq, int rc) {
    FUZZ_CHECK(rc == 0, "push returned %d", rc);
    if (h->overflow.length == 0 && h->ring.length < h->capacity)
        model_fifo_push(&h->ring, seq, true);
    else
        model_fifo_push(&h->overflow, seq, true);
}

/* Only a push that needs the overflow to grow may be refused for memory. */
static void model_refused(harness *h) {
    FUZZ_CHECK(h->overflow.length > 0 || h->ring.length == h->capacity,
               "push failed for memory while the ring had a free slot");
}

static void push_many(harness *h, unsigned n) {
    for (; n > 0; n--) push_one(h);
}

/* n pushes while growing the overflow fails: the ring's slots and the overflow's current room still take
 * tasks; a push needing more fails with -ENOMEM and queues nothing. */
static void push_without_memory(harness *h, unsigned n) {
    lk_fault_arm(LK_FAULT_RING_OVERFLOW_ALLOC, ENOMEM, 0, LK_FAULT_FOREVER);
    for (; n > 0; n--) push_task(h, true);
    lk_fault_disarm(LK_FAULT_RING_OVERFLOW_ALLOC);
}

/* Checks one popped task (status s, payload *t) against the model, and consumes it from the model. */
static void check_popped(harness *h, lk_pop_status s, const lk_task *t) {
    lk_pop_status want = expected_pop(h);
    FUZZ_CHECK(s == want, "pop returned %d, model says %d (ring %zu, overflow %zu, open %zu)", (int)s,
               (int)want, h->ring.length, h->overflow.length, h->open_count);
    if (s != LK_POP_OK) return;
    if (h->ring.length > 0) {
        model_fifo_pop_expecting(&h->ring, t);
        h->head++;
    } else {
        model_fifo_pop_expecting(&h->overflow, t);
    }
}

static lk_pop_status pop_raw(harness *h, lk_task *t) { return lk_ring_pop(h->r, t); }

static void pop_batch(harness *h, size_t max, bool want_busy_flag) {
    lk_task out[BATCH_MAX];
    bool busy = false;
    bool *busy_arg = want_busy_flag ? &busy : NULL;
    check_batch(h, out, lk_ring_pop_batch(h->r, out, max, busy_arg), max, busy_arg);
}

static void claim(harness *h) {
    uint64_t position = 0;
    int rc = lk_ring_claim_for_testing(h->r, &position);
    bool can = h->overflow.length == 0 && h->ring.length < h->capacity;
    FUZZ_CHECK(rc == (can ? 0 : -EBUSY), "claim returned %d, model says %s (ring %zu of %u, overflow %zu)", rc,
               can ? "0" : "-EBUSY", h->ring.length, h->capacity, h->overflow.length);
    if (rc != 0) return;
    uint64_t want = h->head + h->ring.length;
    FUZZ_CHECK(position == want, "claimed position %llu, model says %llu", (unsigned long long)position,
               (unsigned long long)want);
    FUZZ_CHECK(h->open_count < MAX_CAPACITY, "more open claims than slots");
    h->open[h->open_count++] = position;
    model_fifo_push(&h->ring, 0, false);
}

static void publish(harness *h, size_t which) {
    if (h->open_count == 0) return;
    which %= h->open_count;
    uint64_t position = h->open[which];
    h->open[which] = h->open[--h->open_count];
    uint64_t seq = h->next_seq++;
    lk_task t = fuzz_task(seq);
    lk_ring_publish_for_testing(h->r, position, &t);
    model_entry *e = model_fifo_at(&h->ring, (size_t)(position - h->head));
    FUZZ_CHECK(!e->ready, "position %llu published twice", (unsigned long long)position);
    *e = (model_entry){.seq = seq, .ready = true};
}

static void check_state(harness *h) {
    size_t length = lk_ring_length(h->r);
    bool empty = lk_ring_is_empty(h->r);
    size_t overflow = lk_ring_overflow_length(h->r);
    FUZZ_CHECK(length == queued(h), "length %zu, model says %zu (ring %zu, overflow %zu)", length, queued(h),
               h->ring.length, h->overflow.length);
    FUZZ_CHECK(empty == (length == 0), "is_empty = %d with length %zu", empty, length);
    FUZZ_CHECK(overflow == h->overflow.length, "overflow_length %zu, model says %zu", overflow,
               h->overflow.length);
    FUZZ_CHECK(lk_ring_capacity(h->r) == h->capacity, "capacity %u, created with %u", lk_ring_capacity(h->r),
               h->capacity);
}

/* Opcode b % 8 (see the top of this file). */
static void op_push_burst(harness *h, fuzz_input *in, unsigned variant) {
    unsigned n = 1u + fuzz_u8(in) % 200u;
    if (variant & 1u)
        push_without_memory(h, n);
    else
        push_many(h, n);
}

static void op_pop_batch(harness *h, fuzz_input *in, unsigned variant) {
    pop_batch(h, fuzz_u8(in) % BATCH_MAX, (variant & 1u) == 0);
}

static void op_claim(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    claim(h);
}

static void op_publish(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    publish(h, fuzz_u8(in));
}

static const fuzz_op operations[] = {fuzz_op_push_one, op_push_burst, fuzz_op_pop_one, op_pop_batch,
                                     fuzz_op_pop_until_not_ok, op_claim, op_publish, fuzz_op_push_pop_rounds};

static void pop_a_batch(harness *h) { pop_batch(h, BATCH_MAX, true); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const fuzz_driver driver = {.ops = operations, .count = sizeof operations / sizeof operations[0],
                                       .budget = WORK_BUDGET, .check = check_state};
    fuzz_input in = {.data = data, .size = size, .at = 0};
    harness h = {0};
    model_fifo_init(&h.ring);
    model_fifo_init(&h.overflow);

    uint8_t shape = fuzz_u8(&in);
    h.capacity = 2u << (shape % 6u);
    switch ((shape / 6u) % 4u) {
    case 0:
        h.head = 0 - (uint64_t)fuzz_u8(&in);
        break;
    case 1:
        h.head = 0 - (uint64_t)fuzz_u16(&in);
        break;
    case 2:
        h.head = (1ull << 63) - fuzz_u8(&in);
        break;
    default:
        h.head = fuzz_u64(&in);
        break;
    }
    int rc = lk_ring_create_for_testing(&h.r, h.capacity, h.head);
    FUZZ_CHECK(rc == 0, "create_for_testing(%u, %llu) returned %d", h.capacity, (unsigned long long)h.head, rc);
    check_state(&h);

    fuzz_drive(&driver, &h, &in);

    while (h.open_count > 0) {
        publish(&h, h.open_count - 1);
        check_state(&h);
    }
    fuzz_drain(&h, queued, pop_a_batch);
    check_state(&h);
    lk_ring_destroy(h.r);
    model_fifo_free(&h.ring);
    model_fifo_free(&h.overflow);
    return 0;
}
