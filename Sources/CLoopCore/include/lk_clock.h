/* lk_clock.h — the monotonic clock every deadline is computed from (CLOCK_MONOTONIC, vDSO, ~25 ns). */
#ifndef LK_CLOCK_H
#define LK_CLOCK_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. Any thread. */
int64_t lk_clock_now_ns(void);

#endif
