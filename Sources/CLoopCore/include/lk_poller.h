/*
 * lk_poller.h — readiness polling behind one contract, with two backends chosen at run time:
 * io_uring (liburing; poll requests for fds, a multishot poll on the wake eventfd) and epoll
 * (level-triggered for fds, the wake eventfd edge-triggered).
 *
 * Semantics are level-triggered on both: an fd that stays ready is reported by every wait until the caller
 * consumes the condition, modifies its interest or removes it. LK_POLL_ERROR and LK_POLL_HANGUP are
 * reported whether asked for or not (as poll(2) does); LK_POLL_HANGUP also covers a peer's half-close when
 * it was asked for.
 *
 * Choice: LK_BACKEND_AUTO uses io_uring when a ring can be set up and epoll when io_uring is refused
 * (ENOSYS, EPERM, kernel.io_uring_disabled, too old). The environment variable LOOPKIT_BACKEND
 * (epoll | io_uring | auto) overrides the requested backend. lk_poller_backend tells which one runs.
 *
 * Threading: every call on one poller comes from a single thread (the loop thread). With io_uring the
 * ring is created SINGLE_ISSUER, so that thread must be the one that called lk_poller_create. Debug builds
 * (LK_DEBUG) check it on every call, lk_poller_destroy included.
 *
 * Lifetime: remove an fd before closing it. (epoll forgets a closed fd by itself; an io_uring poll keeps
 * the file open until it is removed.)
 */
#ifndef LK_POLLER_H
#define LK_POLLER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum lk_backend {
    LK_BACKEND_AUTO = 0,
    LK_BACKEND_EPOLL = 1,
    LK_BACKEND_IO_URING = 2,
} lk_backend;

enum {
    LK_POLL_READ = 1u << 0,
    LK_POLL_WRITE = 1u << 1,
    LK_POLL_ERROR = 1u << 2,
    LK_POLL_HANGUP = 1u << 3,
};

typedef struct lk_poll_event {
    int fd;
    uint32_t events; /* LK_POLL_* bits */
} lk_poll_event;

typedef struct lk_poller lk_poller;

/*
 * Creates a poller watching wake_fd (an eventfd from lk_wake) for wakeups.
 * Returns 0; -EINVAL for an unknown backend or a bad LOOPKIT_BACKEND value; when io_uring was requested
 * explicitly (argument or environment) and cannot be set up, the -errno io_uring gave (ENOSYS, EPERM, ...);
 * -ENOMEM or another -errno from epoll_create1(2).
 */
int lk_poller_create(lk_poller **out, lk_backend requested, int wake_fd);
void lk_poller_destroy(lk_poller *p);

/* Tests only: lk_poller_create with `override` (NULL for none) standing for LOOPKIT_BACKEND's value, so
 * tests need not change the process environment. */
int lk_poller_create_for_testing(lk_poller **out, lk_backend requested, int wake_fd, const char *override);

/*
 * Whether backend `b` can be set up here: creates a poller of that backend on a scratch eventfd and destroys
 * it. LOOPKIT_BACKEND is not consulted. LK_BACKEND_AUTO answers for what lk_poller_create would fall back to
 * (io_uring, else epoll). Any thread; each call sets a backend up anew (an io_uring ring: tens of µs).
 * Returns 0; -EINVAL for an unknown backend; otherwise the -errno the setup gave: for io_uring ENOSYS (not in
 * this kernel, or older than 5.11), EPERM (kernel.io_uring_disabled, seccomp), ENOMEM (the memlock limit);
 * EMFILE, ENFILE or ENOMEM for the eventfd or the epoll instance.
 */
int lk_backend_probe(lk_backend b);

/* The backend in use (never LK_BACKEND_AUTO). */
lk_backend lk_poller_backend(const lk_poller *p);
/* "epoll" or "io_uring". */
const char *lk_backend_name(lk_backend b);

/*
 * Starts watching fd for `events` (LK_POLL_* bits).
 * Returns 0; -EBADF (negative or closed fd); -EEXIST (already registered, or the wake fd);
 * -EPERM (fd cannot be polled: a regular file, a directory, a device without poll support such as
 * /dev/null); -ENOMEM; -EINVAL (unknown bits); epoll: -ENOSPC (the user's epoll watch limit) or another
 * -errno from epoll_ctl(2); io_uring: an -errno from epoll_create1(2) (the scratch set that answers for
 * devices). On failure nothing is registered.
 */
int lk_poller_add(lk_poller *p, int fd, uint32_t events);
/* Changes the interest of a registered fd. Returns 0, -ENOENT (not registered), -EBADF, -EINVAL, -EPERM (the
 * wake fd); epoll: -ENOMEM or another -errno from epoll_ctl(2); io_uring: -EBUSY (the submission queue is
 * full and could not be flushed). On failure the previous interest stays in force. */
int lk_poller_modify(lk_poller *p, int fd, uint32_t events);
/* Stops watching fd. Returns 0; -ENOENT (not registered); epoll: -ENOMEM or another -errno from
 * epoll_ctl(2); io_uring: -EBUSY (as for modify). On failure fd stays registered. */
int lk_poller_remove(lk_poller *p, int fd);

/*
 * Waits up to timeout_ns (< 0: forever, 0: do not block) for readiness or a wakeup.
 * Fills up to max events and returns how many (0 on timeout or on a wakeup alone); sets *woken when the
 * wake fd fired. A signal does not end the wait early: EINTR is retried with the time that is left.
 * Returns -errno on failure (-EINVAL for max < 0).
 */
int lk_poller_wait(lk_poller *p, int64_t timeout_ns, lk_poll_event *events, int max, bool *woken);

#endif
