/*
 * ring.c — the microtask ring: a bounded MPSC ring with per-slot sequence numbers (after Vyukov's bounded
 * queue) and a mutex-guarded overflow.
 *
 * Ring protocol. head and tail are free-running 64-bit positions; slot p & mask serves position p.
 * slot.seq == p:        free for the producer that claims position p;
 * slot.seq == p + 1:    holds the task for position p (published);
 * after consuming p the consumer sets seq = p + capacity, freeing the slot for position p + capacity.
 * A producer claims p by CAS tail p -> p + 1 (only when seq == p), writes the task, then stores seq = p + 1
 * (release). The consumer reads seq (acquire) before the task. A claimed-but-unpublished slot makes pop
 * return LK_POP_BUSY (tail != head), never EMPTY.
 *
 * Overflow protocol (FIFO across both). `overflow_len` is the number of overflow tasks not yet consumed;
 * it is only written under `lock`. A producer tries the ring only when it reads overflow_len == 0; when the
 * ring is full, or overflow_len != 0, it takes the lock, tries the ring again only if the overflow is still
 * empty, and otherwise appends to the overflow. The consumer pops the ring first and the overflow only
 * when the ring is empty: every task in the ring was claimed while the overflow was empty, hence before
 * anything now in the overflow. So per-producer order and happens-before order are kept.
 *
 * length == (tail - head) + overflow_len, and is_empty is exactly length == 0: both use the *unconsumed*
 * overflow count, so they agree after the overflow has been partly drained.
 */
#include "lk_ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "debug_impl.h"
#include "fault_hook.h"
#include "lk_atomic.h"

typedef struct lk_ring_slot {
    /* Written by the claiming producer (release: publishes task) and by the consumer after reading task
     * (release: hands the slot back); read by both with acquire, pairing with the other side's release. */
    _Atomic uint64_t seq;
    lk_task task;
} lk_ring_slot;

struct lk_ring {
    /* Next position to claim. CAS by producers (relaxed: the slot's seq carries all ordering); loaded by
     * the consumer (acquire) to tell BUSY from EMPTY and by length readers. */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic uint64_t tail;

    /* Next position to consume. Stored only by the consumer, after the slot's seq showed the position
     * published (release: a length reader that acquires head then sees a tail at least that far, since
     * the producer claimed the position before publishing it); loaded by length readers (acquire, pairs
     * with it) and by the consumer itself (relaxed: its own value). Producers learn a slot is free from its
     * seq, never from head. */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic uint64_t head;
    LK_OWNER_FIELD(consumer) /* debug builds: the consumer thread (debug_impl.h) */

    /* Unconsumed overflow tasks. Stored under `lock` (release: publishes "the overflow is active" so a
     * producer that reads non-zero takes the lock path); loaded without the lock by producers and by
     * pop/length (acquire, pairs with those stores). */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic uint64_t overflow_len;
    pthread_mutex_t lock;
    lk_task *overflow;       /* guarded by lock */
    size_t overflow_cap;     /* guarded by lock */
    size_t overflow_head;    /* guarded by lock: next task to consume */
    size_t overflow_tail;    /* guarded by lock: next free index; unconsumed = tail - head */

    uint32_t capacity;
    uint64_t mask;
    lk_ring_slot *slots;
};

static int ring_init(lk_ring **out, uint32_t capacity, uint64_t start) {
    if (capacity < 2 || capacity > (1u << 20) || (capacity & (capacity - 1)) != 0) return -EINVAL;
    lk_ring *r = aligned_alloc(LK_FALSE_SHARING_RANGE, sizeof(*r));
    if (r == NULL) return -ENOMEM;
    memset(r, 0, sizeof(*r));
    r->slots = calloc(capacity, sizeof(lk_ring_slot));
    if (r->slots == NULL || pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r->slots);
        free(r);
        return -ENOMEM;
    }
    r->capacity = capacity;
    r->mask = capacity - 1u;
    for (uint64_t p = start; p != start + capacity; p++) atomic_init(&r->slots[p & r->mask].seq, p);
    atomic_init(&r->tail, start);
    atomic_init(&r->head, start);
    atomic_init(&r->overflow_len, 0);
    LK_OWNER_INIT(&r->consumer);
    *out = r;
    return 0;
}

int lk_ring_create(lk_ring **out) { return ring_init(out, LK_RING_CAPACITY, 0); }

int lk_ring_create_for_testing(lk_ring **out, uint32_t capacity, uint64_t start) {
    return ring_init(out, capacity, start);
}

void lk_ring_destroy(lk_ring *r) {
    if (r == NULL) return;
    pthread_mutex_destroy(&r->lock);
    free(r->overflow);
    free(r->slots);
    free(r);
}

uint32_t lk_ring_capacity(const lk_ring *r) { return r->capacity; }

/* Claims the next ring position into *claimed. False when the ring is full. */
static bool ring_claim(lk_ring *r, uint64_t *claimed) {
    /* relaxed: only a hint; the slot's seq decides. */
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        lk_ring_slot *slot = &r->slots[pos & r->mask];
        /* acquire: pairs with the consumer's release of seq, so its read of the old task is done. */
        uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff == 0) {
            /* relaxed: claiming orders nothing; the seq store below publishes the task. */
            if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (diff < 0) {
            return false; /* the slot still holds the task for pos - capacity: full */
        } else {
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed); /* lost a race: as above */
        }
    }
    *claimed = pos;
    return true;
}

static void ring_publish(lk_ring *r, uint64_t pos, const lk_task *task) {
    lk_ring_slot *slot = &r->slots[pos & r->mask];
    slot->task = *task;
    /* release: publishes the task; pairs with the consumer's acquire of seq. */
    atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
}

/* Claims a ring slot and publishes the task. False when the ring is full. */
static bool ring_try_push(lk_ring *r, const lk_task *task) {
    uint64_t pos;
    if (!ring_claim(r, &pos)) return false;
    ring_publish(r, pos, task);
    return true;
}

/* Under lock: appends to the overflow, growing it geometrically. */
static int overflow_append(lk_ring *r, const lk_task *task) {
    if (r->overflow_tail == r->overflow_cap) {
        if (r->overflow_head > 0) {
            size_t live = r->overflow_tail - r->overflow_head;
            memmove(r->overflow, &r->overflow[r->overflow_head], live * sizeof(lk_task));
            r->overflow_head = 0;
            r->overflow_tail = live;
        }
        if (r->overflow_tail == r->overflow_cap) {
            size_t cap = r->overflow_cap ? r->overflow_cap * 2 : r->capacity;
            lk_task *grown = lk__fault_alloc(LK_FAULT_RING_OVERFLOW_ALLOC) ? NULL : realloc(r->overflow, cap * sizeof(lk_task));
            if (grown == NULL) return -ENOMEM;
            r->overflow = grown;
            r->overflow_cap = cap;
        }
    }
    r->overflow[r->overflow_tail++] = *task;
    /* release: see overflow_len's declaration. */
    atomic_store_explicit(&r->overflow_len, r->overflow_tail - r->overflow_head, memory_order_release);
    return 0;
}

int lk_ring_push(lk_ring *r, const lk_task *task) {
    /* acquire: pairs with the release stores of overflow_len under the lock. */
    if (atomic_load_explicit(&r->overflow_len, memory_order_acquire) == 0 && ring_try_push(r, task)) return 0;
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    /* relaxed: we hold the lock that every writer of overflow_len holds. */
    if (atomic_load_explicit(&r->overflow_len, memory_order_relaxed) != 0 || !ring_try_push(r, task))
        rc = overflow_append(r, task);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Consumer: pops one task from the ring proper. */
static lk_pop_status ring_pop(lk_ring *r, lk_task *out) {
    uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed); /* consumer-owned */
    lk_ring_slot *slot = &r->slots[pos & r->mask];
    /* acquire: pairs with the producer's release of seq; makes the task visible. */
    if (atomic_load_explicit(&slot->seq, memory_order_acquire) == pos + 1) {
        *out = slot->task;
        /* release: the task has been read; hands the slot to the producer of pos + capacity. */
        atomic_store_explicit(&slot->seq, pos + r->capacity, memory_order_release);
        atomic_store_explicit(&r->head, pos + 1, memory_order_release); /* see head's declaration */
        return LK_POP_OK;
    }
    /* acquire: a claimed position (tail moved) is a push in flight: BUSY, not EMPTY. */
    return atomic_load_explicit(&r->tail, memory_order_acquire) != pos ? LK_POP_BUSY : LK_POP_EMPTY;
}

/*
 * Consumer, after finding the ring empty: moves up to max tasks from the overflow. Takes nothing (returns 0)
 * when the ring holds a claimed position again: a producer whose fast path saw an empty overflow can claim a
 * slot after the consumer found the ring empty, and its next task may already be in the overflow; the ring
 * must be popped first, or that producer's order breaks. Under the lock, a claim made after this check
 * cannot be followed by the same producer's overflow append until the take is done.
 */
static size_t overflow_take(lk_ring *r, lk_task *out, size_t max) {
    pthread_mutex_lock(&r->lock);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* consumer-owned */
    /* acquire: as in ring_pop; any claimed position counts, published or not. */
    if (atomic_load_explicit(&r->tail, memory_order_acquire) != head) {
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    size_t live = r->overflow_tail - r->overflow_head;
    size_t n = live < max ? live : max;
    memcpy(out, &r->overflow[r->overflow_head], n * sizeof(lk_task));
    r->overflow_head += n;
    if (r->overflow_head == r->overflow_tail) r->overflow_head = r->overflow_tail = 0;
    /* release: see overflow_len's declaration; reaching 0 re-opens the ring to producers. */
    atomic_store_explicit(&r->overflow_len, r->overflow_tail - r->overflow_head, memory_order_release);
    pthread_mutex_unlock(&r->lock);
    return n;
}

lk_pop_status lk_ring_pop(lk_ring *r, lk_task *out) {
    lk__owner_check(&r->consumer, "lk_ring_pop");
    lk_pop_status s = ring_pop(r, out);
    if (s != LK_POP_EMPTY) return s;
    /* acquire: pairs with the release stores of overflow_len. */
    if (atomic_load_explicit(&r->overflow_len, memory_order_acquire) == 0) return LK_POP_EMPTY;
    if (overflow_take(r, out, 1) == 1) return LK_POP_OK;
    return ring_pop(r, out); /* a position was claimed meanwhile: OK or BUSY */
}

size_t lk_ring_pop_batch(lk_ring *r, lk_task *out, size_t max, bool *busy) {
    lk__owner_check(&r->consumer, "lk_ring_pop_batch");
    size_t n = 0;
    bool stalled = false;
    while (n < max) {
        lk_pop_status s = ring_pop(r, &out[n]);
        if (s == LK_POP_OK) {
            n++;
            continue;
        }
        if (s == LK_POP_BUSY) {
            stalled = true;
            break;
        }
        /* acquire: as in lk_ring_pop. */
        if (atomic_load_explicit(&r->overflow_len, memory_order_acquire) == 0) break;
        /* 0: a position was claimed meanwhile, and the ring comes first (see overflow_take). */
        n += overflow_take(r, &out[n], max - n);
    }
    if (busy != NULL) *busy = stalled;
    return n;
}

size_t lk_ring_overflow_length(lk_ring *r) {
    /* acquire: pairs with the release stores of overflow_len. */
    return (size_t)atomic_load_explicit(&r->overflow_len, memory_order_acquire);
}

size_t lk_ring_length(lk_ring *r) {
    /* acquire: pairs with the consumer's release of head. Read first, so that the tail read after it is at
     * least this head (head was stored after its position's claim, which the acquire makes visible, and
     * tail only grows): tail - head cannot wrap, on any thread. */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    /* relaxed: ordered after the head load by its acquire; see above. */
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    return (size_t)(tail - head) + lk_ring_overflow_length(r);
}

bool lk_ring_is_empty(lk_ring *r) { return lk_ring_length(r) == 0; }

void lk_ring_consumer_hand_over(lk_ring *r) { lk__owner_release(&r->consumer); }

int lk_ring_claim_for_testing(lk_ring *r, uint64_t *position) {
    /* acquire: as in lk_ring_push. */
    if (atomic_load_explicit(&r->overflow_len, memory_order_acquire) != 0) return -EBUSY;
    return ring_claim(r, position) ? 0 : -EBUSY;
}

void lk_ring_publish_for_testing(lk_ring *r, uint64_t position, const lk_task *task) {
    ring_publish(r, position, task);
}
