/*
 * mpsc.c — Vyukov's intrusive MPSC queue, with a node pool.
 *
 * Queue protocol (D. Vyukov, "Intrusive MPSC node-based queue"):
 *   push(n):  n->next = NULL; prev = exchange(tail, n); prev->next = n   (store-release)
 *   pop:      the consumer walks `head` along the `next` links; a stub node keeps the list non-empty.
 * Progress: push is wait-free (one exchange, one store, no retries). Pop is single-consumer and blocking
 * with respect to a producer stalled between its exchange and its link store (the busy window): the
 * consumer cannot reach the new node or anything pushed after it, and — because a node is handed out only
 * once its successor is linked — not the last linked task before it either. So with one task queued and a
 * push held in the window, pop reports LK_POP_BUSY until the push links; with k > 1 queued, k - 1 pop and
 * then BUSY. Never LK_POP_EMPTY while a push is in flight: `tail` already differs from the consumer's
 * position. Callers that might sleep treat BUSY as "work is coming" (the loop spins briefly and retries).
 * "Was empty": push returns 1 when its predecessor was the stub, i.e. the consumer had caught up.
 *
 * Pool protocol: nodes are created in slabs (slab k holds LK_MPSC_SLAB0 << k nodes, so an index maps to
 * its slab with one count-leading-zeros) and never freed before lk_mpsc_destroy, so reading a node that
 * another thread has just taken is memory-safe. Free nodes form a Treiber stack addressed by index, whose
 * head word carries a tag that every pop increments: a popper that read head A and A->pool_next, then lost
 * A to another popper, fails its CAS even if A has been pushed back (no ABA). Producers pop one node per
 * push; the consumer returns popped nodes in batches of LK_MPSC_RETURN_BATCH with one CAS per batch.
 */
#include "lk_mpsc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "debug_impl.h"
#include "fault_hook.h"
#include "lk_atomic.h"

#define LK_MPSC_SLAB0 256u
#define LK_MPSC_SLABS 24 /* 256 * (2^24 - 1) nodes addressable: fits the 32-bit index */
#define LK_MPSC_RETURN_BATCH 32u

typedef struct lk_node lk_node;
struct lk_node {
    lk_task task; /* written by the producer before the link store; read by the consumer after it */
    /* Queue link. Written by push (release, publishes `task`) and by the consumer when it re-pushes
     * the stub; read by the consumer (acquire, pairs with the release in push). */
    _Atomic(lk_node *) next;
    /* Pool link: index + 1 of the next free node, 0 for none. Written by the consumer before it returns a
     * batch (relaxed; published by the release CAS on pool_head); read by producers after their acquire
     * of pool_head (relaxed: the value may be stale if the node was taken meanwhile, and then the tagged
     * CAS fails, so staleness is harmless). */
    _Atomic uint32_t pool_next;
    uint32_t index; /* immutable after slab creation */
};

struct lk_mpsc {
    /* Producers' line. Exchanged by every push (acq_rel: acquire so the predecessor node's memory is ours
     * to write `next` into; release so a later exchanger sees our node initialised). Loaded by the
     * consumer (acquire) to tell BUSY from EMPTY. */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic(lk_node *) tail;

    /* Consumer's line: head is consumer-private. */
    alignas(LK_FALSE_SHARING_RANGE) lk_node *head;
    uint32_t return_head;  /* consumer-private chain of nodes waiting to go back to the pool (index+1) */
    lk_node *return_last;  /* last node of that chain */
    uint32_t return_count;
    LK_OWNER_FIELD(consumer) /* debug builds: the consumer thread (debug_impl.h) */

    /* The stub sits on its own line: producers write its `next` when it is their predecessor. */
    alignas(LK_FALSE_SHARING_RANGE) lk_node stub;

    /* Pool head: (tag << 32) | (index + 1). Popped by producers with a CAS (acquire on success: pairs
     * with the release CAS that pushed the node, so its pool_next and slab are visible); pushed by the
     * consumer and by slab growth with a CAS (release: publishes the chain's pool_next links). */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic uint64_t pool_head;

    /* Slab table. Entries are stored under grow_lock (release: publishes the slab's initialised nodes)
     * and read by anyone decoding an index (acquire, pairs with that store). */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic(lk_node *) slabs[LK_MPSC_SLABS];
    pthread_mutex_t grow_lock;
    uint32_t slab_count;      /* guarded by grow_lock */
    uint64_t nodes_allocated; /* guarded by grow_lock */
};

_Static_assert(sizeof(uint32_t) * 2 == sizeof(uint64_t), "tagged pool head packs two 32-bit halves");

static inline uint32_t slab_of(uint32_t index) {
    uint32_t b = index / LK_MPSC_SLAB0 + 1u;
    return 31u - (uint32_t)__builtin_clz(b);
}

static inline lk_node *node_at(lk_mpsc *q, uint32_t index) {
    uint32_t k = slab_of(index);
    uint32_t first = LK_MPSC_SLAB0 * ((1u << k) - 1u);
    /* acquire: pairs with the release store of the slab pointer in grow(). */
    lk_node *slab = atomic_load_explicit(&q->slabs[k], memory_order_acquire);
    return &slab[index - first];
}

/* Pushes the chain first..last (already linked through pool_next) onto the pool stack. */
static void pool_push_chain(lk_mpsc *q, lk_node *first, lk_node *last) {
    /* relaxed: the release CAS below is what publishes the links. */
    uint64_t old = atomic_load_explicit(&q->pool_head, memory_order_relaxed);
    uint64_t desired;
    do {
        atomic_store_explicit(&last->pool_next, (uint32_t)old, memory_order_relaxed);
        /* keep the tag: only pops change it (see the file comment) */
        desired = (old & 0xffffffff00000000ull) | (uint64_t)(first->index + 1u);
        /* release: publishes the chain's pool_next values and payload-free nodes to the next popper. */
    } while (!atomic_compare_exchange_weak_explicit(&q->pool_head, &old, desired, memory_order_release,
                                                    memory_order_relaxed));
}

/*
 * Slow path of pool_pop, when the pool looked empty. Under grow_lock: if another producer refilled the pool
 * meanwhile, returns NULL with *retry set; otherwise creates the next slab, keeps its first node and pushes
 * the rest to the pool. NULL without *retry means out of memory (or of slabs).
 */
static lk_node *grow(lk_mpsc *q, bool *retry) {
    *retry = false;
    pthread_mutex_lock(&q->grow_lock);
    /* acquire: pairs with pool_push_chain's release, as in pool_pop. */
    if ((uint32_t)atomic_load_explicit(&q->pool_head, memory_order_acquire) != 0) {
        pthread_mutex_unlock(&q->grow_lock);
        *retry = true;
        return NULL;
    }
    if (q->slab_count == LK_MPSC_SLABS) {
        pthread_mutex_unlock(&q->grow_lock);
        return NULL;
    }
    uint32_t k = q->slab_count;
    uint32_t n = LK_MPSC_SLAB0 << k;
    uint32_t first = LK_MPSC_SLAB0 * ((1u << k) - 1u);
    lk_node *slab = lk__fault_alloc(LK_FAULT_NODE_ALLOC) ? NULL : aligned_alloc(LK_CACHELINE, (size_t)n * sizeof(lk_node));
    if (slab == NULL) {
        pthread_mutex_unlock(&q->grow_lock);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        slab[i].index = first + i;
        atomic_init(&slab[i].next, NULL);
        /* slab[i] links to slab[i+1] (index + 2 in the +1 encoding); the last link is set by push_chain. */
        atomic_init(&slab[i].pool_next, first + i + 2u);
    }
    /* release: publishes the initialised nodes to every thread that decodes an index in this slab. */
    atomic_store_explicit(&q->slabs[k], slab, memory_order_release);
    q->slab_count = k + 1;
    q->nodes_allocated += n;
    if (n > 1) pool_push_chain(q, &slab[1], &slab[n - 1]);
    pthread_mutex_unlock(&q->grow_lock);
    return &slab[0];
}

static lk_node *pool_pop(lk_mpsc *q) {
    /* acquire: pairs with the release CAS in pool_push_chain, making the head node's pool_next visible. */
    uint64_t old = atomic_load_explicit(&q->pool_head, memory_order_acquire);
    for (;;) {
        uint32_t top = (uint32_t)old;
        if (top == 0) {
            bool retry;
            lk_node *fresh = grow(q, &retry);
            if (!retry) return fresh;
            /* acquire: as above. */
            old = atomic_load_explicit(&q->pool_head, memory_order_acquire);
            continue;
        }
        lk_node *n = node_at(q, top - 1u);
        /* relaxed: may be stale; the tagged CAS rejects it then (see the file comment). */
        uint32_t next = atomic_load_explicit(&n->pool_next, memory_order_relaxed);
        uint64_t desired = ((old >> 32) + 1u) << 32 | next;
        /* acquire on success: the node and its links are ours; acquire on failure: re-read a fresh head. */
        if (atomic_compare_exchange_weak_explicit(&q->pool_head, &old, desired, memory_order_acquire,
                                                  memory_order_acquire))
            return n;
    }
}

/* Consumer: queues a popped node for return; hands the batch back with one CAS when it is full. */
static void pool_return(lk_mpsc *q, lk_node *n) {
    atomic_store_explicit(&n->pool_next, q->return_head, memory_order_relaxed);
    if (q->return_head == 0) q->return_last = n;
    q->return_head = n->index + 1u;
    if (++q->return_count == LK_MPSC_RETURN_BATCH) {
        pool_push_chain(q, n, q->return_last);
        q->return_head = 0;
        q->return_last = NULL;
        q->return_count = 0;
    }
}

int lk_mpsc_create(lk_mpsc **out) {
    lk_mpsc *q = aligned_alloc(LK_FALSE_SHARING_RANGE, sizeof(*q));
    if (q == NULL) return -ENOMEM;
    memset(q, 0, sizeof(*q));
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->tail, &q->stub);
    q->head = &q->stub;
    LK_OWNER_INIT(&q->consumer);
    atomic_init(&q->pool_head, 0);
    for (int i = 0; i < LK_MPSC_SLABS; i++) atomic_init(&q->slabs[i], NULL);
    if (pthread_mutex_init(&q->grow_lock, NULL) != 0) {
        free(q);
        return -ENOMEM;
    }
    *out = q;
    return 0;
}

void lk_mpsc_destroy(lk_mpsc *q) {
    if (q == NULL) return;
    for (uint32_t k = 0; k < q->slab_count; k++)
        free(atomic_load_explicit(&q->slabs[k], memory_order_relaxed)); /* relaxed: no concurrent use */
    pthread_mutex_destroy(&q->grow_lock);
    free(q);
}

/* First half of a push: takes the tail. Between this and link_finish the push is in the busy window. */
static inline lk_node *link_begin(lk_mpsc *q, lk_node *n) {
    /* relaxed: published by the exchange's release half below. */
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes n (its payload and null link) to the next exchanger, which will store
     * into n->next; acquire pairs with the previous exchanger's release so prev is initialised. */
    return atomic_exchange_explicit(&q->tail, n, memory_order_acq_rel);
}

static inline void link_finish(lk_node *prev, lk_node *n) {
    /* release: publishes n's payload to the consumer; pairs with the acquire loads of `next` in pop. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

static inline int link_node(lk_mpsc *q, lk_node *n) {
    lk_node *prev = link_begin(q, n);
    link_finish(prev, n);
    return prev == &q->stub;
}

int lk_mpsc_push(lk_mpsc *q, const lk_task *task) {
    lk_node *n = pool_pop(q);
    if (n == NULL) return -ENOMEM;
    n->task = *task;
    return link_node(q, n);
}

static lk_pop_status mpsc_pop(lk_mpsc *q, lk_task *out) {
    lk_node *head = q->head;
    /* acquire: pairs with the release link store in link_node; makes the successor's payload visible. */
    lk_node *next = atomic_load_explicit(&head->next, memory_order_acquire);
    if (head == &q->stub) {
        if (next == NULL) {
            /* acquire: pairs with the exchange in link_node. tail != stub means a push is mid-flight. */
            return atomic_load_explicit(&q->tail, memory_order_acquire) == &q->stub ? LK_POP_EMPTY
                                                                                    : LK_POP_BUSY;
        }
        q->head = next; /* skip the stub */
        head = next;
        next = atomic_load_explicit(&head->next, memory_order_acquire); /* as above */
    }
    if (next != NULL) {
        q->head = next;
        *out = head->task;
        pool_return(q, head);
        return LK_POP_OK;
    }
    /* head is the last linked node. If tail moved past it, a producer is between exchange and link. */
    if (head != atomic_load_explicit(&q->tail, memory_order_acquire)) return LK_POP_BUSY; /* as above */
    /* Re-push the stub behind head so head can be unlinked without losing the list's anchor. */
    link_node(q, &q->stub);
    next = atomic_load_explicit(&head->next, memory_order_acquire); /* as above */
    if (next == NULL) return LK_POP_BUSY; /* a producer slipped in before the stub and has not linked yet */
    q->head = next;
    *out = head->task;
    pool_return(q, head);
    return LK_POP_OK;
}

lk_pop_status lk_mpsc_pop(lk_mpsc *q, lk_task *out) {
    lk__owner_check(&q->consumer, "lk_mpsc_pop");
    return mpsc_pop(q, out);
}

size_t lk_mpsc_pop_batch(lk_mpsc *q, lk_task *out, size_t max, bool *busy) {
    lk__owner_check(&q->consumer, "lk_mpsc_pop_batch");
    size_t n = 0;
    lk_pop_status s = LK_POP_EMPTY;
    while (n < max && (s = mpsc_pop(q, &out[n])) == LK_POP_OK) n++;
    if (busy != NULL) *busy = (n < max && s == LK_POP_BUSY);
    return n;
}

bool lk_mpsc_is_empty(lk_mpsc *q) {
    lk__owner_check(&q->consumer, "lk_mpsc_is_empty");
    lk_node *head = q->head;
    /* acquire: as in pop. */
    if (atomic_load_explicit(&head->next, memory_order_acquire) != NULL) return false;
    if (head != &q->stub) return false; /* head itself is an unconsumed task */
    /* acquire: as in pop; a moved tail means a push is in flight, which is not empty. */
    return atomic_load_explicit(&q->tail, memory_order_acquire) == &q->stub;
}

void lk_mpsc_consumer_hand_over(lk_mpsc *q) { lk__owner_release(&q->consumer); }

void lk_mpsc_stats_get(lk_mpsc *q, lk_mpsc_stats *out) {
    pthread_mutex_lock(&q->grow_lock);
    uint64_t allocated = q->nodes_allocated;
    uint64_t slabs = q->slab_count;
    pthread_mutex_unlock(&q->grow_lock);
    uint64_t free_nodes = q->return_count;
    /* relaxed: quiescent by contract; the mutex above already ordered us after any growth. */
    uint32_t i = (uint32_t)atomic_load_explicit(&q->pool_head, memory_order_relaxed);
    while (i != 0 && free_nodes <= allocated) {
        free_nodes++;
        i = atomic_load_explicit(&node_at(q, i - 1u)->pool_next, memory_order_relaxed); /* quiescent */
    }
    out->nodes_allocated = allocated;
    out->nodes_free = free_nodes;
    out->nodes_in_use = allocated - free_nodes;
    out->slabs = slabs;
}

int lk_mpsc_push_begin_for_testing(lk_mpsc *q, const lk_task *task, void **prev, void **node) {
    lk_node *n = pool_pop(q);
    if (n == NULL) return -ENOMEM;
    n->task = *task;
    *prev = link_begin(q, n);
    *node = n;
    return 0;
}

void lk_mpsc_push_finish_for_testing(void *prev, void *node) { link_finish(prev, node); }
