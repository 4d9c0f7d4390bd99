/*
 * model_fifo.h — the reference model the C harnesses compare against: a growable array deque of entries,
 * each a task sequence number and a `ready` flag.
 *
 * `ready` is what the structure under test may already hand out: a task whose push has completed. The split
 * push operations (lk_mpsc_push_begin_for_testing, lk_ring_claim_for_testing) append an entry that is not
 * ready, and their second half marks it ready; each harness turns the flags into the expected pop status.
 */
#ifndef LK_FUZZ_MODEL_FIFO_H
#define LK_FUZZ_MODEL_FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"

typedef struct model_entry {
    uint64_t seq;
    bool ready;
} model_entry;

typedef struct model_fifo {
    model_entry *items; /* circular, capacity a power of two */
    size_t capacity;
    size_t head; /* index of the oldest entry */
    size_t length;
} model_fifo;

static inline void model_fifo_init(model_fifo *m) {
    m->items = NULL;
    m->capacity = 0;
    m->head = 0;
    m->length = 0;
}

static inline void model_fifo_free(model_fifo *m) {
    free(m->items);
    model_fifo_init(m);
}

/* The i-th oldest entry, 0 <= i < length. */
static inline model_entry *model_fifo_at(model_fifo *m, size_t i) {
    FUZZ_CHECK(i < m->length, "model index %zu out of %zu", i, m->length);
    return &m->items[(m->head + i) & (m->capacity - 1)];
}

static inline void model_fifo_push(model_fifo *m, uint64_t seq, bool ready) {
    if (m->length == m->capacity) {
        size_t capacity = m->capacity ? m->capacity * 2 : 64;
        model_entry *grown = malloc(capacity * sizeof(*grown));
        FUZZ_CHECK(grown != NULL, "model out of memory");
        for (size_t i = 0; i < m->length; i++) grown[i] = *model_fifo_at(m, i);
        free(m->items);
        m->items = grown;
        m->capacity = capacity;
        m->head = 0;
    }
    m->items[(m->head + m->length) & (m->capacity - 1)] = (model_entry){.seq = seq, .ready = ready};
    m->length++;
}

/* Removes and returns the oldest entry. */
static inline model_entry model_fifo_pop(model_fifo *m) {
    model_entry e = *model_fifo_at(m, 0);
    m->head = (m->head + 1) & (m->capacity - 1);
    m->length--;
    return e;
}

/* Removes the oldest entry, which the popped task *t must be (payload intact, sequence number equal). */
static inline void model_fifo_pop_expecting(model_fifo *m, const lk_task *t) {
    uint64_t seq = fuzz_task_seq(t);
    model_entry e = model_fifo_pop(m);
    FUZZ_CHECK(seq == e.seq, "popped task %llu, model says %llu", (unsigned long long)seq,
               (unsigned long long)e.seq);
}

#endif
