/*
 * poller_impl.h — the contract between poller.c (backend choice, validation, dispatch) and the backends
 * (poller_epoll.c, poller_uring.c). Each backend embeds `struct lk_poller` first and fills in its ops.
 */
#ifndef LK_POLLER_IMPL_H
#define LK_POLLER_IMPL_H

#include "debug_impl.h"
#include "io_impl.h"
#include "lk_poller.h"

typedef struct lk_poller_ops {
    int (*add)(lk_poller *p, int fd, uint32_t events);
    int (*modify)(lk_poller *p, int fd, uint32_t events);
    int (*remove)(lk_poller *p, int fd);
    int (*wait)(lk_poller *p, int64_t timeout_ns, lk_poll_event *events, int max, bool *woken);
    void (*destroy)(lk_poller *p);
    /* Completion operations (io_impl.h, lk_io.h). io_setup: the backend's part of lk_io_setup (io_uring:
     * the buffer ring unless `flags` rules it out); io_arm / io_cancel: see io_impl.h; io_ring_release: a
     * buffer back into the kernel's ring (only when io.buffer_ring). */
    int (*io_setup)(lk_poller *p, uint32_t flags);
    int (*io_arm)(lk_poller *p, lk_io_op *op);
    int (*io_cancel)(lk_poller *p, lk_io_op *op);
    void (*io_ring_release)(lk_poller *p, uint32_t id);
} lk_poller_ops;

struct lk_poller {
    const lk_poller_ops *ops;
    lk_backend backend;
    int wake_fd;
    lk_io_state io; /* completion operations (io.c) */
    LK_OWNER_FIELD(loop) /* debug builds: the thread that created it, and the only one to call it */
};

#define LK_POLL_ALL (LK_POLL_READ | LK_POLL_WRITE | LK_POLL_ERROR | LK_POLL_HANGUP)

/* Backend constructors: 0 or -errno. The uring one fails with the errno that io_uring gave. */
int lk__poller_epoll_create(lk_poller **out, int wake_fd);
int lk__poller_uring_create(lk_poller **out, int wake_fd);

/* Arms the pending operations (io.c); called by lk_poller_wait before the backend waits. True when the
 * wait must not block: completions are queued, or an op could not be armed for want of anything but a
 * buffer. */
bool lk__io_before_wait(lk_poller *p);

/* Shared validation for add: -EBADF for a negative or closed fd, -EEXIST for the wake fd, -EPERM for a
 * regular file or directory (epoll's answer for fds it cannot poll). */
int lk__poller_check_new_fd(const lk_poller *p, int fd);

#endif
