/*
 * wake.c — the sleep/wake handshake (see lk_wake.h for the protocol).
 *
 * Lost-wakeup argument. Let P be a producer that published a task T and then runs notify: F_p (seq_cst
 * fence), then reads `state`. Let L be the loop running prepare_park: CAS state RUNNING -> SLEEPING
 * (seq_cst), F_l (seq_cst fence), then re-reads the queues. All seq_cst operations are totally ordered.
 * If F_p precedes F_l, L's re-check sees T (the publish is sequenced before F_p), so L does not block.
 * If F_l precedes F_p, P's state read sees SLEEPING (or a later state), so P signals; the eventfd write
 * happens after L's CAS, and the poller reports it whether L is already blocked or blocks later.
 * Dedup: prepare_park resets `pending` *before* its CAS to SLEEPING (the CAS releases the reset), and
 * notify reads `state` with acquire, so a producer that sees SLEEPING also sees pending == 0 or a 1 set by
 * another producer during this same sleep, who wrote the eventfd. A flag left at 1 by an earlier epoch
 * (its write may have been harvested by a non-blocking poll) can therefore never suppress the write this
 * sleep needs. A write from an earlier epoch that lands during this sleep only causes a spurious wakeup.
 *
 * The spec's model of this handshake is spin/wake.pml (`make verify`); change both together.
 */
#include "lk_wake.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "debug_impl.h"
#include "fault_hook.h"
#include "lk_clock.h"
#include "lk_atomic.h"

struct lk_wake {
    /* Loop state (lk_loop_state). CAS by the loop (running <-> sleeping) and by shutdown from any thread
     * (seq_cst: part of the Dekker pair with the producers' fence, see the file comment; the CAS to
     * SLEEPING also releases prepare_park's reset of `pending`). Loaded by notify and lk_wake_state_load
     * with acquire, pairing with those releases. */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic int state;

    /* 1 once a signaller has claimed the eventfd write for the current sleep. Exchanged by signallers
     * (acq_rel: the winner alone writes); stored 0 by prepare_park before it announces SLEEPING (relaxed:
     * published by that CAS, see the file comment). */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic int pending;

    /* Statistics only: relaxed increments and loads; they order nothing. */
    alignas(LK_FALSE_SHARING_RANGE) _Atomic uint64_t requests;
    _Atomic uint64_t syscalls;
    /* When the latest eventfd write was made (CLOCK_MONOTONIC ns). Stored by the signaller that won
     * `pending`, read by the loop's idle policy: relaxed both, a hint that orders nothing. */
    _Atomic int64_t last_signal_ns;

    int fd;
    LK_OWNER_FIELD(loop) /* debug builds: the thread that parks (debug_impl.h) */
};

int lk_wake_create(lk_wake **out) {
    lk_wake *w = aligned_alloc(LK_FALSE_SHARING_RANGE, sizeof(*w));
    if (w == NULL) return -ENOMEM;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        free(w);
        return -e;
    }
    atomic_init(&w->state, LK_STATE_AWAKE);
    atomic_init(&w->pending, 0);
    atomic_init(&w->requests, 0);
    atomic_init(&w->syscalls, 0);
    atomic_init(&w->last_signal_ns, 0);
    LK_OWNER_INIT(&w->loop);
    *out = w;
    return 0;
}

void lk_wake_destroy(lk_wake *w) {
    if (w == NULL) return;
    close(w->fd);
    free(w);
}

int lk_wake_fd(const lk_wake *w) { return w->fd; }

lk_loop_state lk_wake_state_load(const lk_wake *w) {
    /* acquire: see state's declaration. */
    return (lk_loop_state)atomic_load_explicit((_Atomic int *)&w->state, memory_order_acquire);
}

bool lk_wake_state_cas(lk_wake *w, lk_loop_state expected, lk_loop_state desired) {
    int e = (int)expected;
    /* seq_cst: see state's declaration. */
    return atomic_compare_exchange_strong_explicit(&w->state, &e, (int)desired, memory_order_seq_cst,
                                                   memory_order_seq_cst);
}

void lk_wake_state_store(lk_wake *w, lk_loop_state state) {
    atomic_store_explicit(&w->state, (int)state, memory_order_seq_cst); /* seq_cst: as for the CAS */
}

/* write(2) and read(2) of the eventfd, through the fault-injection hooks (lk_fault.h). */
static ssize_t fd_write(int fd, uint64_t value) {
    return lk__fault_errno(LK_FAULT_EVENTFD_WRITE) ? -1 : write(fd, &value, sizeof(value));
}

static ssize_t fd_read(int fd, uint64_t *value) {
    return lk__fault_errno(LK_FAULT_EVENTFD_READ) ? -1 : read(fd, value, sizeof(*value));
}

/* Write attempts that fail (EINTR aside) before the error is reported. */
#define LK_WAKE_WRITE_ATTEMPTS 4

/*
 * Adds 1 to the eventfd so that a poller watching it reports one wakeup. 0, or -errno.
 *
 * EAGAIN means the counter is saturated (2^64 - 2). The fd is readable then, but that no longer helps a
 * sleeping loop: epoll watches the fd edge-triggered and io_uring with a multishot poll, and both report
 * a *write*, not a readable fd, so a failed write wakes nobody. The loop never reads the counter (its
 * value means nothing), so the signaller resets it with a read and writes again. A read that finds the
 * counter at 0 (EAGAIN: another signaller reset it) is as good.
 *
 * Any other error cannot happen on an open eventfd. Every failed attempt (a reset included: something that
 * saturates the counter again at once is not our eventfd's normal life) counts; after
 * LK_WAKE_WRITE_ATTEMPTS the error is returned.
 */
static int write_signal(int fd) {
    int failures = 0;
    for (;;) {
        if (fd_write(fd, 1) == (ssize_t)sizeof(uint64_t)) return 0;
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN) {
            uint64_t value;
            ssize_t n;
            do {
                n = fd_read(fd, &value);
            } while (n < 0 && errno == EINTR);
            if (n < 0 && errno != EAGAIN) e = errno;
        }
        if (++failures == LK_WAKE_WRITE_ATTEMPTS) return -e;
    }
}

int lk_wake_signal(lk_wake *w) {
    atomic_fetch_add_explicit(&w->requests, 1, memory_order_relaxed); /* statistics */
    /* acq_rel: among racing signallers exactly one sees 0 and writes; pairs with prepare_park's reset. */
    if (atomic_exchange_explicit(&w->pending, 1, memory_order_acq_rel) != 0) return 0;
    atomic_store_explicit(&w->last_signal_ns, lk_clock_now_ns(), memory_order_relaxed); /* a hint */
    int rc = write_signal(w->fd);
    if (rc != 0) {
        /* Let a later signal try again rather than leave the flag set with no write behind it. */
        atomic_store_explicit(&w->pending, 0, memory_order_release); /* release: pairs with the exchange */
        return rc;
    }
    atomic_fetch_add_explicit(&w->syscalls, 1, memory_order_relaxed); /* statistics */
    return 1;
}

int lk_wake_notify(lk_wake *w) {
    /* StoreLoad: orders the caller's publish before the state read; pairs with prepare_park's fence. */
    atomic_thread_fence(memory_order_seq_cst); /* spin/wake.pml: NO_PRODUCER_FENCE */
    /* acquire: pairs with prepare_park's CAS, so pending's reset for this sleep is visible below. */
    if (atomic_load_explicit(&w->state, memory_order_acquire) != LK_STATE_SLEEPING) return 0;
    return lk_wake_signal(w);
}

bool lk_wake_prepare_park(lk_wake *w) {
    lk__owner_check(&w->loop, "lk_wake_prepare_park");
    int expected = LK_STATE_RUNNING;
    /* relaxed: published by the CAS below (see pending's declaration). */
    /* spin/wake.pml: RESET_IN_FINISH_PARK, NO_PENDING_RESET */
    atomic_store_explicit(&w->pending, 0, memory_order_relaxed);
    /* seq_cst: see state's declaration. */
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expected, LK_STATE_SLEEPING,
                                                 memory_order_seq_cst, memory_order_seq_cst))
        return false;
    /* StoreLoad: orders the SLEEPING store before the caller's queue re-check; pairs with notify's fence. */
    atomic_thread_fence(memory_order_seq_cst); /* spin/wake.pml: NO_LOOP_FENCE */
    return true;
}

void lk_wake_finish_park(lk_wake *w) {
    lk__owner_check(&w->loop, "lk_wake_finish_park");
    int expected = LK_STATE_SLEEPING;
    /* seq_cst: see state's declaration. Fails harmlessly when shutdown moved the state on. */
    atomic_compare_exchange_strong_explicit(&w->state, &expected, LK_STATE_RUNNING, memory_order_seq_cst,
                                            memory_order_seq_cst);
}

int64_t lk_wake_last_signal_ns(const lk_wake *w) {
    return atomic_load_explicit((_Atomic int64_t *)&w->last_signal_ns, memory_order_relaxed); /* a hint */
}

void lk_wake_counters(const lk_wake *w, uint64_t *requests, uint64_t *syscalls) {
    /* relaxed: statistics. */
    if (requests) *requests = atomic_load_explicit((_Atomic uint64_t *)&w->requests, memory_order_relaxed);
    if (syscalls) *syscalls = atomic_load_explicit((_Atomic uint64_t *)&w->syscalls, memory_order_relaxed);
}
