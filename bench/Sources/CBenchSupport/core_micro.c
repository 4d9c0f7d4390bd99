/*
 * core_micro.c — C-level microbenchmarks of CLoopCore, one function per measurement (loopbench's
 * CoreMicro workload calls them once per run): single-thread push+pop cost of each queue, the cost of one
 * wake syscall on each backend, and a cross-thread wake of a loop sleeping in each backend.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "CLoopCore.h"
#include "lkb.h"

#include <stdatomic.h>

#define OPS 5000000

/* One push immediately followed by one pop, OPS times: the uncontended cost of moving one task through. */
static double bench_mpsc(void) {
    lk_mpsc *q;
    lk_mpsc_create(&q);
    lk_task t = {{0}}, out;
    for (int i = 0; i < 1000; i++) { lk_mpsc_push(q, &t); lk_mpsc_pop(q, &out); }
    int64_t s = lk_clock_now_ns();
    for (uintptr_t i = 0; i < OPS; i++) {
        t.words[0] = i;
        lk_mpsc_push(q, &t);
        lk_mpsc_pop(q, &out);
    }
    double ns = (double)(lk_clock_now_ns() - s) / OPS;
    lk_mpsc_destroy(q);
    return ns;
}

static double bench_chunkq(int batch) {
    lk_chunkq *q;
    lk_chunkq_create(&q);
    lk_task t = {{0}}, out[64];
    int64_t s = lk_clock_now_ns();
    for (uintptr_t i = 0; i < OPS; i += (uintptr_t)batch) {
        for (int k = 0; k < batch; k++) lk_chunkq_push(q, &t);
        if (batch == 1) lk_chunkq_pop(q, out);
        else lk_chunkq_pop_batch(q, out, (size_t)batch);
    }
    double ns = (double)(lk_clock_now_ns() - s) / OPS;
    lk_chunkq_destroy(q);
    return ns;
}

static double bench_ring(void) {
    lk_ring *r;
    lk_ring_create(&r);
    lk_task t = {{0}}, out;
    int64_t s = lk_clock_now_ns();
    for (uintptr_t i = 0; i < OPS; i++) {
        t.words[0] = i;
        lk_ring_push(r, &t);
        lk_ring_pop(r, &out);
    }
    double ns = (double)(lk_clock_now_ns() - s) / OPS;
    lk_ring_destroy(r);
    return ns;
}

static double bench_ingress(lk_ingress_kind kind) {
    lk_ingress *q;
    lk_ingress_create(&q, kind, NULL);
    lk_task t = {{0}}, out;
    int64_t s = lk_clock_now_ns();
    for (uintptr_t i = 0; i < OPS; i++) {
        lk_ingress_push(q, &t, NULL);
        lk_ingress_pop(q, &out);
    }
    double ns = (double)(lk_clock_now_ns() - s) / OPS;
    lk_ingress_destroy(q);
    return ns;
}

/* Cost paid by a producer that wakes a parked loop: notify() that ends in one eventfd write, with the
 * eventfd registered in the backend (the wait queue callback is part of the cost). Returns ns/wake,
 * or -1 when the backend is unavailable. */
#define WAKES 100000
static double bench_wake_syscall(lk_backend backend) {
    lk_wake *w;
    lk_poller *p;
    lk_wake_create(&w);
    if (lk_poller_create_for_testing(&p, backend, lk_wake_fd(w), NULL) != 0) {
        lk_wake_destroy(w);
        return -1;
    }
    lk_poll_event ev[4];
    bool woken;
    lk_poller_wait(p, 0, ev, 4, &woken); /* arm the wake poll */
    lk_wake_state_store(w, LK_STATE_RUNNING);
    int64_t spent = 0;
    for (int i = 0; i < WAKES; i++) {
        lk_wake_prepare_park(w);
        int64_t s = lk_clock_now_ns();
        lk_wake_notify(w);
        spent += lk_clock_now_ns() - s;
        lk_wake_finish_park(w);
        if (i % 512 == 511) lk_poller_wait(p, 0, ev, 4, &woken); /* reap completions, untimed */
    }
    uint64_t req, sys;
    lk_wake_counters(w, &req, &sys);
    lk_poller_destroy(p);
    lk_wake_destroy(w);
    if (sys != WAKES) return -1;
    return (double)spent / WAKES; /* includes one clock read (~25 ns, vDSO) */
}

/* Cross-thread wake: a loop thread parks in the backend; the producer pushes, notifies, and spins until
 * the loop has taken the task and flipped `seen`. Mean round trip (wake one way + a spinning hand-off). */
typedef struct {
    lk_backend backend;
    lk_wake *w;
    lk_mpsc *q;
    _Atomic uint64_t seen;
    _Atomic int ready;
    int rounds;
} wake_rt;

static void *wake_rt_loop(void *arg) {
    wake_rt *x = arg;
    lk_poller *p;
    if (lk_poller_create_for_testing(&p, x->backend, lk_wake_fd(x->w), NULL) != 0) {
        atomic_store_explicit(&x->ready, -1, memory_order_release); /* release: pairs with main's acquire */
        return NULL;
    }
    lk_poll_event ev[4];
    bool woken;
    lk_wake_state_store(x->w, LK_STATE_RUNNING);
    atomic_store_explicit(&x->ready, 1, memory_order_release); /* release: pairs with main's acquire */
    lk_task t;
    for (uint64_t got = 0; got < (uint64_t)x->rounds;) {
        if (lk_mpsc_pop(x->q, &t) == LK_POP_OK) {
            got++;
            /* release: pairs with the producer's acquire spin; the hand-off back. */
            atomic_store_explicit(&x->seen, got, memory_order_release);
            continue;
        }
        if (!lk_wake_prepare_park(x->w)) break;
        if (lk_mpsc_is_empty(x->q)) lk_poller_wait(p, -1, ev, 4, &woken);
        lk_wake_finish_park(x->w);
    }
    lk_poller_destroy(p);
    return NULL;
}

static double bench_wake_round_trip(lk_backend backend) {
    wake_rt x = {.backend = backend, .rounds = 2000};
    lk_wake_create(&x.w);
    lk_mpsc_create(&x.q);
    atomic_init(&x.seen, 0);
    atomic_init(&x.ready, 0);
    pthread_t th;
    pthread_create(&th, NULL, wake_rt_loop, &x);
    int ready;
    /* acquire: pairs with the loop thread's release. */
    while ((ready = atomic_load_explicit(&x.ready, memory_order_acquire)) == 0) sched_yield();
    double mean = -1;
    if (ready == 1) {
        lk_task t = {{0}};
        int64_t total = 0;
        for (int i = 1; i <= x.rounds; i++) {
            /* Let the loop reach its park before the next task: this measures waking a sleeper. */
            while (lk_wake_state_load(x.w) != LK_STATE_SLEEPING) sched_yield();
            int64_t s = lk_clock_now_ns();
            lk_mpsc_push(x.q, &t);
            lk_wake_notify(x.w);
            /* acquire: pairs with the loop's release of seen. */
            while (atomic_load_explicit(&x.seen, memory_order_acquire) != (uint64_t)i) lk_thread_spin_pause();
            total += lk_clock_now_ns() - s;
        }
        mean = (double)total / x.rounds;
    }
    pthread_join(th, NULL);
    lk_mpsc_destroy(x.q);
    lk_wake_destroy(x.w);
    return mean;
}

double lkb_mpsc_push_pop_ns(void) { return bench_mpsc(); }
double lkb_chunkq_push_pop_ns(int batch) { return bench_chunkq(batch); }
double lkb_ring_push_pop_ns(void) { return bench_ring(); }
double lkb_ingress_push_pop_ns(int lock_free) {
    return bench_ingress(lock_free ? LK_INGRESS_LOCK_FREE : LK_INGRESS_CHUNKED);
}
double lkb_wake_syscall_ns(int io_uring) { return bench_wake_syscall(io_uring ? LK_BACKEND_IO_URING : LK_BACKEND_EPOLL); }
double lkb_wake_round_trip_ns(int io_uring) {
    return bench_wake_round_trip(io_uring ? LK_BACKEND_IO_URING : LK_BACKEND_EPOLL);
}
