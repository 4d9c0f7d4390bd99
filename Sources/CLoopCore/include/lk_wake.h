/*
 * lk_wake.h — the loop's sleep/wake handshake: its state word, a wake-pending flag and an eventfd.
 *
 * Protocol (Dekker; docs/design.md and docs/memory-model.md give the argument):
 *   producer: publish the task;            lk_wake_notify(): seq_cst fence; if state == SLEEPING, signal
 *   loop:     lk_wake_prepare_park():      CAS RUNNING -> SLEEPING; seq_cst fence
 *             then re-check every queue;   if any is non-empty, lk_wake_finish_park() and do not block
 *             else block in the poller;    lk_wake_finish_park() after it returns
 * Either the producer sees SLEEPING and signals, or the loop's re-check sees the task: never neither.
 *
 * Signals are deduplicated by the wake-pending flag: among all producers that find the loop SLEEPING, only
 * the first writes the eventfd, so a sleeping loop costs one syscall however many producers wake it.
 * lk_wake_prepare_park resets the flag at the start of every sleep, so the dedup works for the loop's
 * whole life.
 *
 * The eventfd is non-blocking; pollers register it edge-triggered (epoll) or with a multishot poll
 * (io_uring), so the loop never reads it. Should its counter ever saturate (a write fails with EAGAIN and
 * would wake nobody), the signaller resets it with a read and writes again.
 *
 * Threading: notify, signal, state_load, state_cas and counters from any thread; prepare_park and
 * finish_park from the loop thread only (debug builds, LK_DEBUG: checked, the first caller being the loop).
 */
#ifndef LK_WAKE_H
#define LK_WAKE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum lk_loop_state {
    LK_STATE_AWAKE = 0,       /* created, never run */
    LK_STATE_RUNNING = 1,     /* running ticks (or spinning while idle) */
    LK_STATE_SLEEPING = 2,    /* blocked, or about to block, in the poller */
    LK_STATE_TERMINATING = 3, /* draining accepted work before terminating */
    LK_STATE_TERMINATED = 4,  /* final */
} lk_loop_state;

typedef struct lk_wake lk_wake;

/* Creates the handshake with state AWAKE. Returns 0, -ENOMEM, or -errno from eventfd(2). */
int lk_wake_create(lk_wake **out);
void lk_wake_destroy(lk_wake *w);

/* The eventfd the poller must watch for readability. */
int lk_wake_fd(const lk_wake *w);

/* Any thread: the state word (acquire). */
lk_loop_state lk_wake_state_load(const lk_wake *w);
/* Any thread: compare-and-swap of the state word (seq_cst). True when it swapped. */
bool lk_wake_state_cas(lk_wake *w, lk_loop_state expected, lk_loop_state desired);
/* Loop thread: unconditional store of the state word (seq_cst). */
void lk_wake_state_store(lk_wake *w, lk_loop_state state);

/*
 * Producer, after publishing work: fence, read the state, and signal if the loop is SLEEPING.
 * Returns 1 if this call wrote the eventfd, 0 if no syscall was needed, or -errno from write(2) (or from
 * the read(2) that resets a saturated counter) once its retries are spent; the pending flag is then clear,
 * so the next signal writes again.
 */
int lk_wake_notify(lk_wake *w);

/* Any thread: unconditionally request a wake (deduplicated by the pending flag). Same returns as notify. */
int lk_wake_signal(lk_wake *w);

/* Loop: reset the wake-pending flag, CAS RUNNING -> SLEEPING, then a seq_cst fence. False (and no state
 * change) if the state was not RUNNING. After a true return the caller must re-check every queue before
 * blocking, and call lk_wake_finish_park whether or not it blocked. */
bool lk_wake_prepare_park(lk_wake *w);

/* Loop: CAS SLEEPING -> RUNNING (a no-op if another thread moved the state on, e.g. to TERMINATING). */
void lk_wake_finish_park(lk_wake *w);

/* Loop: CLOCK_MONOTONIC time (ns) taken by the signaller of the latest eventfd write, just before it (0
 * before any). After a wake-up it says when the work that caused it was published. A hint: relaxed. */
int64_t lk_wake_last_signal_ns(const lk_wake *w);

/* Any thread: how many signals were requested and how many eventfd writes they cost. */
void lk_wake_counters(const lk_wake *w, uint64_t *requests, uint64_t *syscalls);

#endif
