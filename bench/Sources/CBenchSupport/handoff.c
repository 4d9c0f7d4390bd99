/*
 * handoff.c — cross-thread C-level measurements: the machine's floors (a bare single-producer ring with
 * cached indices; a spinning round trip through two atomics) and LoopKit's ingress moving the same tasks,
 * so that a report shows LoopKit's C-level and Swift-level costs beside what the hardware allows.
 *
 * Every measurement runs one producer pinned to CPU 0 and one consumer pinned to CPU 1 (when the machine
 * has two) and has the consumer check each task's counter, so a lost, duplicated or reordered task fails
 * the run (-1) instead of flattering it. Each moves 32 bytes per task: the floor's tasks are four words;
 * LoopKit's are three words plus the queue's sequence word in the same 32-byte slot, pushed in registers
 * (lk_ingress_push_words); the submit variant adds the admission gate, i.e. the call the Swift layer makes
 * for a submit (lk_ingress_submit).
 */
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "CLoopCore.h"
#include "lkb.h"

#define HANDOFF_TASKS 5000000u
#define FLOOR_RING_SLOTS 4096u /* power of two */
#define ROUND_TRIPS 200000u

/* Pins to `cpu` when the machine has more than one; the unpinned run is still a valid measurement. */
static void pin(int cpu) {
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1) lkb_pin_thread(cpu);
}

/* The start of a measurement: runs `other(arg)` on a thread of its own (it pins itself to CPU 1), pins this
 * thread to CPU 0 and returns the clock. */
static inline int64_t start_timed(pthread_t *th, void *(*other)(void *), void *arg) {
    pthread_create(th, NULL, other, arg);
    pin(0);
    return lk_clock_now_ns();
}

/* The end of a hand-off: waits for the consumer to have checked every task, then reads the clock; unpins
 * this thread and returns the nanoseconds per task since `start`. */
static inline double finish_handoff(pthread_t th, int64_t start) {
    pthread_join(th, NULL);
    double ns = (double)(lk_clock_now_ns() - start) / HANDOFF_TASKS;
    lkb_unpin_thread();
    return ns;
}

/* ---- floor: single-producer ring, producer caching the consumer's index */

/* The floor's task: 32 bytes, the size of a LoopKit ingress slot. */
typedef struct {
    uint64_t words[4];
} floor_task;

typedef struct {
    floor_task slots[FLOOR_RING_SLOTS];
    alignas(128) _Atomic uint64_t tail; /* producer: release store; consumer: acquire load */
    alignas(128) _Atomic uint64_t head; /* consumer: release store per batch; producer: acquire when full */
    alignas(128) _Atomic int failed;
} floor_ring;

static void *floor_consumer(void *arg) {
    floor_ring *r = arg;
    pin(1);
    uint64_t h = 0;
    while (h < HANDOFF_TASKS) {
        /* acquire: pairs with the producer's release of tail. */
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (t == h) {
            lk_thread_spin_pause();
            continue;
        }
        for (; h < t; h++)
            if (r->slots[h & (FLOOR_RING_SLOTS - 1)].words[0] != h) atomic_store_explicit(&r->failed, 1, memory_order_relaxed);
        /* release: the slots up to h are free; pairs with the producer's acquire. */
        atomic_store_explicit(&r->head, h, memory_order_release);
    }
    return NULL;
}

double lkb_floor_handoff_ns(void) {
    floor_ring *r = aligned_alloc(128, sizeof(*r));
    if (r == NULL) return -1;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->failed, 0);
    pthread_t th;
    int64_t start = start_timed(&th, floor_consumer, r);
    uint64_t cached_head = 0;
    for (uint64_t i = 0; i < HANDOFF_TASKS; i++) {
        while (i - cached_head >= FLOOR_RING_SLOTS) {
            /* acquire: pairs with the consumer's release of head. */
            cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (i - cached_head >= FLOOR_RING_SLOTS) lk_thread_spin_pause();
        }
        r->slots[i & (FLOOR_RING_SLOTS - 1)] = (floor_task){{i, 1, 2, 3}};
        /* release: publishes the slot; pairs with the consumer's acquire. */
        atomic_store_explicit(&r->tail, i + 1, memory_order_release);
    }
    double ns = finish_handoff(th, start);
    bool failed = atomic_load_explicit(&r->failed, memory_order_relaxed) != 0;
    free(r);
    return failed ? -1 : ns;
}

/* ---- a spinning round trip through two atomics: the floor between two threads of its own, and
 * PingPongLatency's floor between a producer and an entrant's thread (below) */

struct lkb_pingpong {
    alignas(128) _Atomic uint64_t ping; /* pinging thread: release; echo: acquire */
    alignas(128) _Atomic uint64_t pong; /* echo: release; pinging thread: acquire */
};

lkb_pingpong *lkb_pingpong_create(void) {
    lkb_pingpong *p = aligned_alloc(128, sizeof(*p));
    if (p == NULL) return NULL;
    atomic_init(&p->ping, 0);
    atomic_init(&p->pong, 0);
    return p;
}

void lkb_pingpong_destroy(lkb_pingpong *p) { free(p); }

static void *echo(void *arg) {
    lkb_pingpong *x = arg;
    pin(1);
    for (uint64_t i = 1; i <= ROUND_TRIPS; i++) {
        /* acquire: pairs with main's release. */
        while (atomic_load_explicit(&x->ping, memory_order_acquire) != i) lk_thread_spin_pause();
        atomic_store_explicit(&x->pong, i, memory_order_release); /* release: pairs with main's acquire */
    }
    return NULL;
}

double lkb_floor_round_trip_ns(void) {
    lkb_pingpong *x = lkb_pingpong_create();
    if (x == NULL) return -1;
    pthread_t th;
    int64_t start = start_timed(&th, echo, x);
    for (uint64_t i = 1; i <= ROUND_TRIPS; i++) {
        atomic_store_explicit(&x->ping, i, memory_order_release); /* release: pairs with echo's acquire */
        /* acquire: pairs with echo's release. */
        while (atomic_load_explicit(&x->pong, memory_order_acquire) != i) lk_thread_spin_pause();
    }
    double ns = (double)(lk_clock_now_ns() - start) / ROUND_TRIPS;
    pthread_join(th, NULL);
    lkb_unpin_thread();
    lkb_pingpong_destroy(x);
    return ns;
}

/* ---- LoopKit: the same tasks through lk_ingress (push from one thread, pop_batch on another) */

typedef struct {
    lk_ingress *q;
    lk_gate *gate;
    alignas(128) _Atomic int failed;
} ingress_handoff;

static void *ingress_consumer(void *arg) {
    ingress_handoff *x = arg;
    pin(1);
    lk_task batch[1024];
    uint64_t expected = 0;
    while (expected < HANDOFF_TASKS) {
        size_t n = lk_ingress_pop_batch(x->q, batch, 1024, NULL);
        if (n == 0) {
            lk_thread_spin_pause();
            continue;
        }
        for (size_t k = 0; k < n; k++, expected++)
            if (batch[k].words[0] != expected) atomic_store_explicit(&x->failed, 1, memory_order_relaxed);
    }
    return NULL;
}

/* variant: 0 as LoopKit runs it; 1 per-producer pushes kept fenced (no fast mode); 2 a wake notification
 * (fence + state load) after every push, as every push paid before the per-producer kind. */
static double measure_ingress_handoff(lk_ingress_kind kind, int variant, bool with_gate) {
    ingress_handoff *x = aligned_alloc(128, sizeof(*x));
    if (x == NULL) return -1;
    atomic_init(&x->failed, 0);
    lk_wake *w = NULL;
    if (variant == 2 && lk_wake_create(&w) != 0) {
        free(x);
        return -1;
    }
    if (variant == 2) lk_wake_state_store(w, LK_STATE_RUNNING); /* running: notify costs its fence and load */
    if (variant == 1) lk_ingress_fast_mode_for_testing(false);
    if (lk_gate_create(&x->gate) != 0 || lk_ingress_create(&x->q, kind, NULL) != 0) {
        lk_ingress_fast_mode_for_testing(true);
        lk_gate_destroy(x->gate);
        lk_wake_destroy(w);
        free(x);
        return -1;
    }
    pthread_t th;
    int64_t start = start_timed(&th, ingress_consumer, x);
    for (uint64_t i = 0; i < HANDOFF_TASKS; i++) {
        int rc = with_gate ? lk_ingress_submit(x->q, x->gate, i, 1, 2) : lk_ingress_push_words(x->q, i, 1, 2);
        if (rc < 0) atomic_store_explicit(&x->failed, 1, memory_order_relaxed); /* -ENOMEM: not here */
        if (variant == 2) lk_wake_notify(w);
    }
    double ns = finish_handoff(th, start);
    bool failed = atomic_load_explicit(&x->failed, memory_order_relaxed) != 0;
    lk_ingress_destroy(x->q);
    lk_gate_close(x->gate);
    lk_gate_destroy(x->gate);
    lk_ingress_fast_mode_for_testing(true);
    lk_wake_destroy(w);
    free(x);
    return failed ? -1 : ns;
}

double lkb_ingress_handoff_ns(int kind) { return measure_ingress_handoff((lk_ingress_kind)kind, 0, false); }
double lkb_ingress_handoff_fenced_ns(void) { return measure_ingress_handoff(LK_INGRESS_PER_PRODUCER, 1, false); }
double lkb_ingress_handoff_notify_each_ns(void) { return measure_ingress_handoff(LK_INGRESS_PER_PRODUCER, 2, false); }
double lkb_submit_handoff_ns(void) { return measure_ingress_handoff(LK_INGRESS_PER_PRODUCER, 0, true); }

/* ---- the spinning round-trip floor between a producer and an entrant's own thread (PingPongLatency) */

/* One step of a wait for the other side: a pause, and every 64th step a yield (as the Swift side's spin):
 * when the scheduler has put both threads on one CPU (an entrant whose thread inherited the producer's
 * pin, or an oversubscribed machine), a pure spin would hold that CPU until the time slice ends, once per
 * ping. Apart, a round trip ends long before the 64th step and never yields. */
static inline void pingpong_wait(unsigned *steps) {
    if ((++*steps & 63u) == 0) {
        sched_yield();
    } else {
        lk_thread_spin_pause();
    }
}

void lkb_pingpong_echo(lkb_pingpong *p, uint64_t first, uint64_t count) {
    for (uint64_t i = first; i < first + count; i++) {
        unsigned steps = 0;
        /* acquire: pairs with the producer's release. */
        while (atomic_load_explicit(&p->ping, memory_order_acquire) != i) pingpong_wait(&steps);
        atomic_store_explicit(&p->pong, i, memory_order_release); /* release: pairs with the producer's acquire */
    }
}

int64_t lkb_pingpong_round_trip(lkb_pingpong *p, uint64_t i) {
    int64_t start = lk_clock_now_ns();
    atomic_store_explicit(&p->ping, i, memory_order_release); /* release: pairs with the echo's acquire */
    unsigned steps = 0;
    /* acquire: pairs with the echo's release. */
    while (atomic_load_explicit(&p->pong, memory_order_acquire) != i) pingpong_wait(&steps);
    return lk_clock_now_ns() - start;
}
