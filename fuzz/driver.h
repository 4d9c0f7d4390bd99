/*
 * driver.h — the main loop every C harness shares: read an opcode byte, run the operation it names, check the
 * structure against the model, until the input ends or the work budget is spent.
 *
 * A harness defines `struct harness` before including this header, with two counters the loop reads:
 * `size_t work` (units of work spent; each operation adds what it did) and `size_t ops` (operations run so
 * far). Its input format is a table of operations: opcode byte b runs ops[b % count] with variant b / count,
 * and the operation reads its own operands from the input. The table and the operand reads are the harness's
 * documented format, so committed seeds decode the same however the loop around them is written.
 */
#ifndef LK_FUZZ_DRIVER_H
#define LK_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"

typedef struct harness harness;

/* One operation: reads its operands from `in` and applies them to the structure and to the model. */
typedef void (*fuzz_op)(harness *h, fuzz_input *in, unsigned variant);

typedef struct fuzz_driver {
    const fuzz_op *ops;           /* the input format: opcode b runs ops[b % count] */
    unsigned count;
    size_t budget;                /* no operation starts once h->work has reached it */
    void (*op_begin)(harness *h); /* NULL, or called before every operation */
    void (*op_end)(harness *h);   /* NULL, or called after every operation, before h->ops counts it */
    void (*check)(harness *h);    /* after every operation, once h->ops counts it */
} fuzz_driver;

/* Runs the operations the rest of the input encodes. */
static inline void fuzz_drive(const fuzz_driver *d, harness *h, fuzz_input *in) {
    while (fuzz_more(in) && h->work < d->budget) {
        uint8_t b = fuzz_u8(in);
        if (d->op_begin != NULL) d->op_begin(h);
        d->ops[b % d->count](h, in, b / d->count);
        if (d->op_end != NULL) d->op_end(h);
        h->ops++;
        d->check(h);
    }
}

/* Calls `step` (a batch pop) until `queued` (the model's count) is 0; a step that takes nothing fails. */
static inline void fuzz_drain(harness *h, size_t (*queued)(const harness *h), void (*step)(harness *h)) {
    for (size_t before = queued(h); before > 0; before = queued(h)) {
        step(h);
        FUZZ_CHECK(queued(h) < before, "no progress draining %zu tasks", before);
    }
}

#endif
