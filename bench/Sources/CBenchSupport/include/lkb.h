/* lkb.h — C helpers of loopbench: allocation counting and the C-level microbenchmarks of CLoopCore. */
#ifndef LKB_H
#define LKB_H

#include <stdint.h>

/* Allocation counting (alloc_count.c). Off until enabled; counts malloc/calloc/realloc(NULL)/memalign. */
void lkb_alloc_enable(int on);
uint64_t lkb_alloc_count(void);

/* Single-thread push+pop cost, ns per push+pop pair. */
double lkb_mpsc_push_pop_ns(void);
double lkb_chunkq_push_pop_ns(int batch);
double lkb_ring_push_pop_ns(void);
double lkb_ingress_push_pop_ns(int lock_free);
/* ns per notify() that writes the wake eventfd; -1 when the backend is unavailable. */
double lkb_wake_syscall_ns(int io_uring);
/* Mean ns from push+notify to a loop asleep in the backend until it has the task; -1 if unavailable. */
double lkb_wake_round_trip_ns(int io_uring);

/* Cross-thread hand-off of 32-byte tasks, producer on CPU 0 and consumer on CPU 1 (handoff.c), ns per task;
 * -1 when a task was lost or reordered. The floor is a bare single-producer ring with cached indices. */
double lkb_floor_handoff_ns(void);
/* Spinning round trip between two threads through two atomics, ns. */
double lkb_floor_round_trip_ns(void);
/* LoopKit's ingress of the given kind (lk_ingress_kind) moving the same tasks. */
double lkb_ingress_handoff_ns(int kind);
/* The per-producer hand-off without fast mode (a fence per push), and with a wake notification per push:
 * what each of those per-task costs adds. */
double lkb_ingress_handoff_fenced_ns(void);
double lkb_ingress_handoff_notify_each_ns(void);
/* The per-producer hand-off through lk_ingress_submit: the admission gate and the push, as a Swift submit. */
double lkb_submit_handoff_ns(void);

/* The spinning round trip between a producer and an echo that runs on an entrant's own thread (a task that
 * answers `count` pings numbered from `first`, through two atomics): PingPongLatency's floor, measured
 * between the same two threads as the entrant's round trips, interleaved with them. round_trip pings `i`
 * (numbered from 1) and returns the ns until the answer. */
typedef struct lkb_pingpong lkb_pingpong;
lkb_pingpong *lkb_pingpong_create(void);
void lkb_pingpong_destroy(lkb_pingpong *p);
void lkb_pingpong_echo(lkb_pingpong *p, uint64_t first, uint64_t count);
int64_t lkb_pingpong_round_trip(lkb_pingpong *p, uint64_t i);

/* Pins the calling thread to `cpu` (0, or -1 when it cannot: one CPU, bad index); unpin restores. */
int lkb_pin_thread(int cpu);
/* The same, and moves the process's other threads off `cpu` until unpin, which restores their masks. */
int lkb_pin_thread_alone(int cpu);
void lkb_unpin_thread(void);
/* Sets the calling thread's timer slack (how late the kernel may end its sleeps), in ns. */
void lkb_set_timer_slack_ns(unsigned long ns);

#endif
