/*
 * poller_uring_impl.h — the io_uring backend's state, shared by its two files: poller_uring.c (readiness,
 * waiting) and poller_uring_io.c (completion operations). Only these files include liburing.
 */
#ifndef LK_POLLER_URING_IMPL_H
#define LK_POLLER_URING_IMPL_H

#include <liburing.h>

#include "poller_impl.h"

#define LK_URING_ENTRIES 256u
#define LK_URING_CQ_ENTRIES 4096u

/* user_data: kind in bits 62..63, generation in bits 32..61, fd in bits 0..31. */
#define UD_KIND_FD 0ull
#define UD_KIND_WAKE 1ull
#define UD_KIND_IGNORE 2ull
#define UD_KIND_OP 3ull /* a completion operation: slot in bits 0..31, its generation in 32..61 */
#define UD_KIND(ud) ((ud) >> 62)
#define UD_GEN_MASK LK_IO_GEN_MASK /* an operation's generation, as io_impl.h counts it */

typedef struct uring_fd {
    uint32_t gen;      /* generation of the current registration */
    uint32_t events;   /* LK_POLL_* interest */
    bool registered;
    bool armed;        /* a poll request with this generation is in the kernel */
    bool queued;       /* listed in rearm[] */
} uring_fd;

typedef struct lk_uring_poller {
    lk_poller base;
    struct io_uring ring;
    uring_fd *fds;  /* indexed by fd, grown geometrically */
    size_t fds_len;
    int *rearm;     /* fds to (re-)arm at the next wait */
    size_t rearm_len;  /* rearm[] has room for fds_len entries */
    bool wake_armed;
    int probe_fd;   /* an empty epoll set for check_device, created on first use; -1 until then */
    struct io_uring_buf_ring *buf_ring; /* receive buffers (lk_io.h), NULL without a buffer ring */
} lk_uring_poller;

/* An SQE, submitting what is queued to make room when the submission queue is full; NULL when it stays full. */
struct io_uring_sqe *lk__uring_get_sqe(lk_uring_poller *p);

/* Submits what is queued, without waiting (EINTR retried). >= 0 or -errno. */
int lk__uring_submit(lk_uring_poller *p);

/* poller_uring_io.c: the completion operations' hooks, and the handling of their completions. */
int lk__uring_io_setup(lk_poller *p, uint32_t flags);
int lk__uring_io_arm(lk_poller *p, lk_io_op *op);
int lk__uring_io_cancel(lk_poller *p, lk_io_op *op);
void lk__uring_io_ring_release(lk_poller *p, uint32_t id);
void lk__uring_io_complete(lk_uring_poller *p, const struct io_uring_cqe *cqe);
void lk__uring_io_destroy(lk_uring_poller *p);

#endif
