/*
 * lk_thread.h — which loop, if any, the calling thread is running. A thread-local word read through a
 * static inline getter, so `inEventLoop` is a TLS load and a compare (a few ns), never a syscall.
 * Each loop takes a process-unique non-zero id from lk_thread_next_loop_id(); 0 means "no loop".
 */
#ifndef LK_THREAD_H
#define LK_THREAD_H

#include <stdint.h>

extern _Thread_local uint64_t lk__thread_loop_id;

/* A fresh, process-unique, non-zero loop id. Any thread. */
uint64_t lk_thread_next_loop_id(void);

/* The id of the loop running on this thread, or 0. */
static inline uint64_t lk_thread_loop_id(void) { return lk__thread_loop_id; }

/* Marks this thread as running loop `id` (0 to clear). Returns the previous value. */
static inline uint64_t lk_thread_set_loop_id(uint64_t id) {
    uint64_t previous = lk__thread_loop_id;
    lk__thread_loop_id = id;
    return previous;
}

/* Names the calling thread (truncated to 15 bytes), for ps, top and perf. */
void lk_thread_set_name(const char *name);

/* A spin-wait hint for loops that poll shared state (PAUSE on x86, YIELD on arm64). */
static inline void lk_thread_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
