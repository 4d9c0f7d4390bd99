/* lk_clock.h — the monotonic clock every deadline is computed from (CLOCK_MONOTONIC, vDSO, ~25 ns). */
#ifndef LK_CLOCK_H
#define LK_CLOCK_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. Any thread. */
int64_t lk_clock_now_ns(void);

/* CPU time the calling thread has used, ns (CLOCK_THREAD_CPUTIME_ID: a system call, ~0.2 µs). */
int64_t lk_clock_thread_cpu_ns(void);

#endif
