/*
 * lk_fault.h — tests only: fault injection at the system calls and allocations of the core.
 *
 * The kernel calls and allocations on the paths that carry work (the wake eventfd, the pollers' system
 * calls, memory for queued work, the gate's membarrier) pass through a hook (fault_hook.h); the pollers'
 * own tables and the gate's per-thread records are not hooked. A test arms a point; its next
 * calls then fail with the armed error without reaching the kernel or the allocator, and the test checks
 * that the core retries or reports a documented error and loses nothing (docs/reliability.md, "faults").
 *
 * A hook whose point is not armed costs one relaxed load and a branch that is not taken; an armed point's
 * hook takes a mutex.
 *
 * Threading: arm, disarm and injected from any thread. Points are global to the process: a test that arms
 * one must disarm it before another test runs.
 */
#ifndef LK_FAULT_H
#define LK_FAULT_H

#include <stdint.h>

typedef enum lk_fault_point {
    LK_FAULT_EVENTFD_WRITE = 0, /* wake: write(2) of a signal to the wake eventfd */
    LK_FAULT_EVENTFD_READ,      /* wake: read(2) that resets a saturated wake eventfd */
    LK_FAULT_EPOLL_CTL,         /* epoll backend: epoll_ctl(2) for registered fds */
    LK_FAULT_EPOLL_WAIT,        /* epoll backend: epoll_pwait2(2) / epoll_wait(2) */
    LK_FAULT_URING_SQE,         /* io_uring backend: io_uring_get_sqe finds the submission queue full */
    LK_FAULT_URING_SUBMIT,      /* io_uring backend: a submission outside the wait (io_uring_enter) */
    LK_FAULT_URING_WAIT,        /* io_uring backend: the submit-and-wait of lk_poller_wait */
    LK_FAULT_NODE_ALLOC,        /* mpsc: a slab of queue nodes */
    LK_FAULT_CHUNK_ALLOC,       /* chunkq: a chunk of slots */
    LK_FAULT_RING_OVERFLOW_ALLOC, /* ring: growth of the overflow */
    LK_FAULT_MEMBARRIER,        /* barrier: membarrier(2) of the heavy barrier (a gate closing, a loop giving up a
                                 * producer queue in fast mode; membarrier mode only) */
    LK_FAULT_SEGMENT_ALLOC,     /* spscq: a segment of task slots */
    LK_FAULT_PRODUCER_ALLOC,    /* per-producer ingress: a producer's record (its first push to a loop) */
    LK_FAULT_IO_NOBUFS,         /* completion I/O: a receive finds no free buffer, as when the kernel's buffer
                                 * ring runs dry (-ENOBUFS); the error value is ignored */
    LK_FAULT_POINT_COUNT
} lk_fault_point;

/* count for lk_fault_arm: fail every call until disarmed. */
#define LK_FAULT_FOREVER UINT32_MAX

/*
 * Arms `point`: the next `skip` calls pass, then `count` calls fail with `error` (an errno value; an
 * allocation point ignores it and fails as the allocator does, with NULL). Replaces an earlier arming of
 * the point; a count of 0 disarms it. Ignored for an unknown point.
 */
void lk_fault_arm(lk_fault_point point, int error, uint32_t skip, uint32_t count);
void lk_fault_disarm(lk_fault_point point);
void lk_fault_disarm_all(void);

/* How many calls at `point` have failed by injection since the process started. */
uint64_t lk_fault_injected(lk_fault_point point);

#endif
