/*
 * chunkq.c — a FIFO of fixed-size chunks under one mutex, with chunk recycling.
 *
 * Invariants (under `lock`): tasks live in chunks head..tail; the head chunk is read from head_index, the
 * tail chunk written at tail_index; head == tail == NULL only before the first push. Drained chunks go to a
 * spare list of at most LK_CHUNKQ_SPARE_MAX so bursts do not malloc/free in steady state. The mutex orders
 * everything; the one atomic, `published_length`, lets is_empty and length answer without taking the lock
 * (the loop asks on every spin iteration, and so never contends with producers for their lock).
 */
#include "lk_chunkq.h"

#include "debug_impl.h"
#include "fault_hook.h"
#include "lk_atomic.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LK_CHUNKQ_SPARE_MAX 8u

typedef struct lk_chunk lk_chunk;
struct lk_chunk {
    lk_chunk *next;
    lk_task slots[LK_CHUNKQ_CHUNK_SLOTS];
};

struct lk_chunkq {
    pthread_mutex_t lock;
    lk_chunk *head; /* oldest chunk */
    lk_chunk *tail; /* newest chunk */
    size_t head_index; /* next slot to read in head */
    size_t tail_index; /* next slot to write in tail */
    size_t length;
    /* Copy of `length`, stored under the lock after every change (release: a reader that sees n > 0 will
     * find those tasks once it takes the lock); loaded without the lock by is_empty/length (acquire,
     * pairs with those stores). */
    _Atomic uint64_t published_length;
    lk_chunk *spare; /* recycled chunks, linked through next */
    uint64_t spare_count;
    uint64_t chunks_allocated;
    uint64_t chunks_live;
    LK_OWNER_FIELD(consumer) /* debug builds: the consumer thread (debug_impl.h) */
};

int lk_chunkq_create(lk_chunkq **out) {
    lk_chunkq *q = calloc(1, sizeof(*q));
    if (q == NULL) return -ENOMEM;
    /* Adaptive: a contended lock spins briefly before sleeping. Hold times here are a few copies, far
     * shorter than a futex sleep and wake, which would otherwise dominate under producer contention. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    int rc = pthread_mutex_init(&q->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        free(q);
        return -ENOMEM;
    }
    LK_OWNER_INIT(&q->consumer);
    *out = q;
    return 0;
}

static void free_list(lk_chunk *c) {
    while (c != NULL) {
        lk_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void lk_chunkq_destroy(lk_chunkq *q) {
    if (q == NULL) return;
    free_list(q->head);
    free_list(q->spare);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* Under lock: a fresh chunk, recycled when possible. */
static lk_chunk *chunk_get(lk_chunkq *q) {
    lk_chunk *c = q->spare;
    if (c != NULL) {
        q->spare = c->next;
        q->spare_count--;
    } else {
        c = lk__fault_alloc(LK_FAULT_CHUNK_ALLOC) ? NULL : malloc(sizeof(*c));
        if (c == NULL) return NULL;
        q->chunks_allocated++;
        q->chunks_live++;
    }
    c->next = NULL;
    return c;
}

/* Under lock: a drained chunk goes to the spare list, or back to malloc when enough are spare. */
static void chunk_put(lk_chunkq *q, lk_chunk *c) {
    if (q->spare_count < LK_CHUNKQ_SPARE_MAX) {
        c->next = q->spare;
        q->spare = c;
        q->spare_count++;
    } else {
        free(c);
        q->chunks_live--;
    }
}

int lk_chunkq_push(lk_chunkq *q, const lk_task *task) {
    pthread_mutex_lock(&q->lock);
    if (q->tail == NULL || q->tail_index == LK_CHUNKQ_CHUNK_SLOTS) {
        lk_chunk *c = chunk_get(q);
        if (c == NULL) {
            pthread_mutex_unlock(&q->lock);
            return -ENOMEM;
        }
        if (q->tail == NULL) {
            q->head = c;
            q->head_index = 0;
        } else {
            q->tail->next = c;
        }
        q->tail = c;
        q->tail_index = 0;
    }
    q->tail->slots[q->tail_index++] = *task;
    int was_empty = q->length++ == 0;
    atomic_store_explicit(&q->published_length, q->length, memory_order_release); /* see the declaration */
    pthread_mutex_unlock(&q->lock);
    return was_empty;
}

/* Under lock: moves up to max tasks out. */
static size_t take(lk_chunkq *q, lk_task *out, size_t max) {
    size_t n = 0;
    while (n < max && q->length > 0) {
        lk_chunk *c = q->head;
        size_t end = (c == q->tail) ? q->tail_index : LK_CHUNKQ_CHUNK_SLOTS;
        size_t avail = end - q->head_index;
        size_t k = avail < max - n ? avail : max - n;
        memcpy(&out[n], &c->slots[q->head_index], k * sizeof(lk_task));
        n += k;
        q->head_index += k;
        q->length -= k;
        if (q->head_index == LK_CHUNKQ_CHUNK_SLOTS) {
            /* Finished a full chunk; it is never the tail with free slots, so it can be recycled. */
            q->head = c->next;
            q->head_index = 0;
            if (q->head == NULL) q->tail = NULL;
            chunk_put(q, c);
        }
    }
    if (q->length == 0 && q->head != NULL) {
        /* Empty with a partly used chunk: rewind it instead of keeping a hole at its front. */
        q->head_index = 0;
        q->tail_index = 0;
    }
    atomic_store_explicit(&q->published_length, q->length, memory_order_release); /* see the declaration */
    return n;
}

lk_pop_status lk_chunkq_pop(lk_chunkq *q, lk_task *out) {
    lk__owner_check(&q->consumer, "lk_chunkq_pop");
    pthread_mutex_lock(&q->lock);
    size_t n = take(q, out, 1);
    pthread_mutex_unlock(&q->lock);
    return n == 1 ? LK_POP_OK : LK_POP_EMPTY;
}

size_t lk_chunkq_pop_batch(lk_chunkq *q, lk_task *out, size_t max) {
    lk__owner_check(&q->consumer, "lk_chunkq_pop_batch");
    pthread_mutex_lock(&q->lock);
    size_t n = take(q, out, max);
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t lk_chunkq_length(lk_chunkq *q) {
    /* acquire: pairs with the release stores made under the lock. */
    return (size_t)atomic_load_explicit(&q->published_length, memory_order_acquire);
}

bool lk_chunkq_is_empty(lk_chunkq *q) { return lk_chunkq_length(q) == 0; }

void lk_chunkq_consumer_hand_over(lk_chunkq *q) { lk__owner_release(&q->consumer); }

void lk_chunkq_stats_get(lk_chunkq *q, lk_chunkq_stats *out) {
    pthread_mutex_lock(&q->lock);
    out->chunks_allocated = q->chunks_allocated;
    out->chunks_live = q->chunks_live;
    out->chunks_spare = q->spare_count;
    pthread_mutex_unlock(&q->lock);
}
