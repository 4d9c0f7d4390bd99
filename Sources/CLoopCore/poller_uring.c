/*
 * poller_uring.c — the io_uring backend (liburing): readiness and waiting. Completion operations are in
 * poller_uring_io.c; these two files (and their poller_uring_impl.h) are the only ones that include liburing.
 *
 * The ring is created SINGLE_ISSUER | DEFER_TASKRUN where the kernel allows (6.1+; plain flags otherwise):
 * completions are then processed only when the loop thread enters the kernel to wait, which is exactly
 * when the loop wants them, and submission is cheaper.
 *
 * fds: one-shot IORING_OP_POLL_ADD requests. A completion is reported once and the fd is re-armed at the
 * start of the next wait, so a condition the caller did not consume fires again at once: level-triggered,
 * like the epoll backend. Each registration has a generation, carried in user_data with the fd, so a
 * completion for a poll that was modified or removed (its cancellation completes later, with -ECANCELED
 * or even with a real mask) is recognised as stale and dropped.
 *
 * Wakeups: one multishot poll on the wake eventfd posts a completion for every write; the counter is never
 * read. If the kernel ends the multishot (no IORING_CQE_F_MORE) it is re-armed at the next wait.
 *
 * Waiting: io_uring_submit_and_wait_timeout submits the arms and waits in one io_uring_enter (it needs
 * IORING_FEAT_EXT_ARG, 5.11+; without it this backend reports ENOSYS and auto falls back to epoll).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault_hook.h"
#include "poller_uring_impl.h"

static uint64_t fd_user_data(int fd, uint32_t gen) {
    return (UD_KIND_FD << 62) | ((uint64_t)(gen & UD_GEN_MASK) << 32) | (uint32_t)fd;
}

static unsigned to_poll_mask(uint32_t events) {
    unsigned m = POLLERR | POLLHUP;
    if (events & LK_POLL_READ) m |= POLLIN | POLLPRI;
    if (events & LK_POLL_WRITE) m |= POLLOUT;
    if (events & LK_POLL_HANGUP) m |= POLLRDHUP;
    return m;
}

static uint32_t from_poll_mask(unsigned m) {
    uint32_t events = 0;
    if (m & (POLLIN | POLLPRI)) events |= LK_POLL_READ;
    if (m & POLLOUT) events |= LK_POLL_WRITE;
    if (m & (POLLERR | POLLNVAL)) events |= LK_POLL_ERROR;
    if (m & (POLLHUP | POLLRDHUP)) events |= LK_POLL_HANGUP;
    return events;
}

/* The ring calls that can fail, through the fault-injection hooks (lk_fault.h). */
static struct io_uring_sqe *hooked_get_sqe(lk_uring_poller *p) {
    if (lk__fault(LK_FAULT_URING_SQE) != 0) return NULL; /* as if the submission queue were full */
    return io_uring_get_sqe(&p->ring);
}

/* Submits what is queued (without waiting, but running deferred completion work when `get_events`).
 * EINTR is retried. >= 0 or -errno. */
static int hooked_submit(lk_uring_poller *p, bool get_events) {
    for (;;) {
        int e = lk__fault(LK_FAULT_URING_SUBMIT);
        int rc = e != 0 ? -e : get_events ? io_uring_submit_and_get_events(&p->ring) : io_uring_submit(&p->ring);
        if (rc != -EINTR) return rc;
    }
}

int lk__uring_submit(lk_uring_poller *p) { return hooked_submit(p, false); }

/* An SQE, submitting what is queued to make room when the submission queue is full. NULL when the queue
 * stays full (the submission failed: the kernel is short of memory or the completion queue overflowed). */
struct io_uring_sqe *lk__uring_get_sqe(lk_uring_poller *p) {
    struct io_uring_sqe *sqe = hooked_get_sqe(p);
    if (sqe == NULL && hooked_submit(p, false) >= 0) sqe = hooked_get_sqe(p);
    return sqe;
}

/*
 * Grows the fd table to cover fd, and rearm[] with it: an fd is queued at most once (its `queued` flag), so
 * rearm[] never holds more than fds_len entries, queue_rearm never needs memory, and a completion can always
 * re-arm its fd.
 */
static int grow_table(lk_uring_poller *p, int fd) {
    if ((size_t)fd < p->fds_len) return 0;
    size_t len = p->fds_len ? p->fds_len : 64;
    while (len <= (size_t)fd) len *= 2;
    int *r = realloc(p->rearm, len * sizeof(*r));
    if (r == NULL) return -ENOMEM;
    p->rearm = r;
    uring_fd *t = realloc(p->fds, len * sizeof(*t));
    if (t == NULL) return -ENOMEM;
    memset(&t[p->fds_len], 0, (len - p->fds_len) * sizeof(*t));
    p->fds = t;
    p->fds_len = len;
    return 0;
}

static void queue_rearm(lk_uring_poller *p, int fd) {
    uring_fd *e = &p->fds[fd];
    if (e->queued) return;
    p->rearm[p->rearm_len++] = fd; /* room: see grow_table */
    e->queued = true;
}

/* Cancels the in-kernel poll of fd's current generation, if any, and moves to a new generation. */
static int cancel_current(lk_uring_poller *p, int fd) {
    uring_fd *e = &p->fds[fd];
    if (e->armed) {
        struct io_uring_sqe *sqe = lk__uring_get_sqe(p);
        if (sqe == NULL) return -EBUSY;
        io_uring_prep_poll_remove(sqe, fd_user_data(fd, e->gen));
        io_uring_sqe_set_data64(sqe, UD_KIND_IGNORE << 62);
        e->armed = false;
        /* Submit the cancellation and run the completion work now: until the cancelled poll completes,
         * the kernel holds a reference to the file, so a close() by the caller would not release it (a
         * closed listening socket would go on accepting). With DEFER_TASKRUN that work only runs when the
         * ring is entered with GETEVENTS, hence submit_and_get_events rather than a plain submit. If this
         * submission fails, the cancellation stays queued and goes in with the next wait. */
        hooked_submit(p, true);
    }
    e->gen = (e->gen + 1) & UD_GEN_MASK;
    return 0;
}

/*
 * A character or block device whose driver has no poll support (/dev/null, /dev/zero): epoll refuses it
 * with EPERM, but an io_uring poll completes at once with the default mask, on every arm, so its handler
 * would run in a tight loop. Asking epoll, through an empty scratch set, makes both backends answer alike.
 * 0, -EPERM (not pollable) or -errno (the scratch set could not be created).
 */
static int check_device(lk_uring_poller *p, int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) return 0;
    if (p->probe_fd < 0) {
        p->probe_fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->probe_fd < 0) return -errno;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(p->probe_fd, EPOLL_CTL_ADD, fd, &ev) != 0) return errno == EPERM ? -EPERM : 0;
    epoll_ctl(p->probe_fd, EPOLL_CTL_DEL, fd, NULL);
    return 0;
}

static int uring_add(lk_poller *base, int fd, uint32_t events) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    int rc = check_device(p, fd);
    if (rc != 0) return rc;
    rc = grow_table(p, fd);
    if (rc != 0) return rc;
    uring_fd *e = &p->fds[fd];
    if (e->registered) return -EEXIST;
    queue_rearm(p, fd);
    e->registered = true;
    e->events = events;
    return 0;
}

static int uring_modify(lk_poller *base, int fd, uint32_t events) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    if ((size_t)fd >= p->fds_len || !p->fds[fd].registered) return -ENOENT;
    int rc = cancel_current(p, fd);
    if (rc != 0) return rc;
    queue_rearm(p, fd);
    p->fds[fd].events = events;
    return 0;
}

static int uring_remove(lk_poller *base, int fd) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    if ((size_t)fd >= p->fds_len || !p->fds[fd].registered) return -ENOENT;
    int rc = cancel_current(p, fd);
    if (rc != 0) return rc;
    p->fds[fd].registered = false;
    return 0;
}

/* Queues SQEs for the wake poll and for every fd waiting to be (re-)armed. False when something could not
 * be armed (the submission queue stayed full): the wait must not block then, or it could miss the wakeup
 * or the fd it failed to watch; it polls instead, and the next wait tries again. */
static bool arm_pending(lk_uring_poller *p) {
    bool complete = true;
    if (!p->wake_armed) {
        struct io_uring_sqe *sqe = lk__uring_get_sqe(p);
        if (sqe != NULL) {
            io_uring_prep_poll_multishot(sqe, p->base.wake_fd, POLLIN);
            io_uring_sqe_set_data64(sqe, UD_KIND_WAKE << 62);
            p->wake_armed = true;
        } else {
            complete = false;
        }
    }
    size_t done = 0;
    for (; done < p->rearm_len; done++) {
        int fd = p->rearm[done];
        uring_fd *e = &p->fds[fd];
        if (e->registered && !e->armed) {
            struct io_uring_sqe *sqe = lk__uring_get_sqe(p);
            if (sqe == NULL) {
                complete = false;
                break;
            }
            io_uring_prep_poll_add(sqe, fd, to_poll_mask(e->events));
            io_uring_sqe_set_data64(sqe, fd_user_data(fd, e->gen));
            e->armed = true;
        }
        e->queued = false;
    }
    /* Whatever could not be armed stays queued for the next wait. */
    if (done < p->rearm_len)
        memmove(p->rearm, &p->rearm[done], (p->rearm_len - done) * sizeof(int));
    p->rearm_len -= done;
    return complete;
}

/* Submits the queued SQEs and waits for a completion: up to timeout_ns (< 0: forever, 0: not at all).
 * >= 0, or -errno (-ETIME when the timeout passed). */
static int submit_and_wait(lk_uring_poller *p, int64_t timeout_ns) {
    int e = lk__fault(LK_FAULT_URING_WAIT);
    if (e != 0) return -e;
    if (timeout_ns == 0) return io_uring_submit_and_get_events(&p->ring);
    if (timeout_ns < 0) return io_uring_submit_and_wait(&p->ring, 1);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    return io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);
}

/* Handles one completion; returns true when it produced an event in *ev. */
static bool complete(lk_uring_poller *p, const struct io_uring_cqe *cqe, lk_poll_event *ev, bool *woken) {
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (UD_KIND(ud) == UD_KIND_WAKE) {
        if (cqe->res >= 0) *woken = true;
        if (!(cqe->flags & IORING_CQE_F_MORE)) p->wake_armed = false;
        return false;
    }
    if (UD_KIND(ud) == UD_KIND_OP) {
        lk__uring_io_complete(p, cqe);
        return false;
    }
    if (UD_KIND(ud) != UD_KIND_FD) return false;
    int fd = (int)(uint32_t)ud;
    uint32_t gen = (uint32_t)(ud >> 32) & UD_GEN_MASK;
    if ((size_t)fd >= p->fds_len) return false;
    uring_fd *e = &p->fds[fd];
    if (!e->registered || e->gen != gen || !e->armed) return false; /* stale: modified or removed */
    e->armed = false;
    queue_rearm(p, fd); /* level-triggered: watch again from the next wait (room: see grow_table) */
    if (cqe->res == -ECANCELED) return false;
    ev->fd = fd;
    ev->events = cqe->res < 0 ? LK_POLL_ERROR : from_poll_mask((unsigned)cqe->res);
    return ev->events != 0;
}

static int uring_wait(lk_poller *base, int64_t timeout_ns, lk_poll_event *out, int max, bool *woken) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    if (!arm_pending(p)) timeout_ns = 0;
    int rc = submit_and_wait(p, timeout_ns);
    /* ETIME: the timeout passed; EAGAIN, EBUSY: the kernel could not take the submissions now (they stay
     * queued for the next wait); EINTR: a signal. In each case report whatever has completed. */
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return rc;
    struct io_uring_cqe *cqe;
    int count = 0;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&p->ring, head, cqe) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        /* An fd event needs room in out[]; leave it in the queue otherwise (it is reported next time). */
        if (UD_KIND(ud) == UD_KIND_FD && count == max) break;
        /* An operation's completion needs room in the completion queue; it waits in the ring otherwise. */
        if (UD_KIND(ud) == UD_KIND_OP && !lk__io_has_room(&p->base.io)) break;
        if (complete(p, cqe, &out[count], woken)) count++;
        seen++;
    }
    io_uring_cq_advance(&p->ring, seen);
    /* EINTR with nothing to report is retried by lk_poller_wait. */
    return (rc == -EINTR && count == 0) ? -EINTR : count;
}

static void uring_destroy(lk_poller *base) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    io_uring_queue_exit(&p->ring);
    lk__uring_io_destroy(p);
    if (p->probe_fd >= 0) close(p->probe_fd);
    free(p->fds);
    free(p->rearm);
    free(p);
}

static const lk_poller_ops uring_ops = {
    .add = uring_add,
    .modify = uring_modify,
    .remove = uring_remove,
    .wait = uring_wait,
    .destroy = uring_destroy,
    .io_setup = lk__uring_io_setup,
    .io_arm = lk__uring_io_arm,
    .io_cancel = lk__uring_io_cancel,
    .io_ring_release = lk__uring_io_ring_release,
};

int lk__poller_uring_create(lk_poller **out, int wake_fd) {
    lk_uring_poller *p = calloc(1, sizeof(*p));
    if (p == NULL) return -ENOMEM;
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    params.cq_entries = LK_URING_CQ_ENTRIES;
    int rc = io_uring_queue_init_params(LK_URING_ENTRIES, &p->ring, &params);
    if (rc == -EINVAL) { /* kernel older than 6.1: no SINGLE_ISSUER / DEFER_TASKRUN */
        memset(&params, 0, sizeof(params));
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = LK_URING_CQ_ENTRIES;
        rc = io_uring_queue_init_params(LK_URING_ENTRIES, &p->ring, &params);
    }
    if (rc == 0 && !(params.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&p->ring);
        rc = -ENOSYS;
    }
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->base.ops = &uring_ops;
    p->base.backend = LK_BACKEND_IO_URING;
    p->probe_fd = -1;
    p->base.wake_fd = wake_fd;
    *out = &p->base;
    return 0;
}
