/*
 * lk_task.h — the fixed-size payload every LoopKit queue carries by value.
 *
 * A task is three machine words of opaque data. The queues never interpret it: they copy it in on push and
 * out on pop. LoopKit stores a Swift closure (two words) plus a timestamp in it; the C tests store a producer
 * id, a sequence number and a check word. Carrying the payload by value lets the lock-free queue recycle its
 * nodes and the ring keep its slots inline, so neither allocates per task; three words leave room in a
 * 32-byte slot for the queue's own sequence word (lk_ring, lk_spscq), two slots to a cache line.
 */
#ifndef LK_TASK_H
#define LK_TASK_H

#include <stdint.h>

#define LK_TASK_WORDS 3

typedef struct lk_task {
    uintptr_t words[LK_TASK_WORDS];
} lk_task;

_Static_assert(sizeof(lk_task) == LK_TASK_WORDS * sizeof(uintptr_t), "lk_task has no padding");

/* Result of a single-consumer pop. */
typedef enum lk_pop_status {
    LK_POP_OK = 0,    /* a task was copied out */
    LK_POP_EMPTY = 1, /* nothing queued and no push in progress */
    LK_POP_BUSY = 2,  /* a producer is between claiming its place and publishing it: not empty, retry soon */
} lk_pop_status;

#endif
