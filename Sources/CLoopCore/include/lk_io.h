/*
 * lk_io.h — completion-based socket operations on a poller: accept, receive, send, connect, close, and
 * cancellation. The caller starts an operation; its results come back as completions, collected by
 * lk_poller_wait and taken with lk_io_completions on the same (loop) thread.
 *
 * Backends (the same contract on both):
 *   io_uring  the operations go to the ring: multishot accept; multishot receive into a provided-buffer
 *             ring where the kernel supports it (registration succeeds and the kernel is 6.0+), single-shot
 *             receives into the pool's buffers otherwise (or when LK_IO_NO_BUFFER_RING is set); send,
 *             connect, close; cancellation by IORING_OP_ASYNC_CANCEL.
 *   epoll     readiness plus non-blocking system calls: the socket joins the poller's epoll set, and each
 *             report of readiness runs accept4 / recv / send / getsockopt(SO_ERROR) for the operation
 *             waiting on it.
 *
 * Operations and their completions (result: >= 0, or -errno):
 *   accept   multishot: one completion per accepted socket (result: the new fd, non-blocking, close-on-exec),
 *            with LK_IO_F_MORE; an error ends the operation (a completion without LK_IO_F_MORE).
 *   recv     multishot: one completion per chunk received, with LK_IO_F_MORE | LK_IO_F_BUFFER (result: the
 *            byte count, `buffer`: the pool buffer holding them, which the caller owns until it passes it to
 *            lk_io_buffer_release); result 0 is end of stream and ends the operation, as does an error.
 *            When no buffer is free (the pool is lent out; the kernel's buffer ring ran dry, -ENOBUFS) the
 *            operation is not ended: it waits, and resumes at a wait after a buffer has come back.
 *   send     one completion: the bytes sent (possibly fewer than asked) or -errno. `data` must stay valid
 *            until the completion. MSG_NOSIGNAL: a reset peer gives -EPIPE or -ECONNRESET, not SIGPIPE.
 *   connect  one completion: 0 or -errno. The address is copied.
 *   close    one completion: 0 or -errno; the fd is closed either way, except for -ECANCELED (a close
 *            cancelled before it was submitted: the fd is still open). No other operation on the fd may be
 *            in flight (cancel them and take their completions first).
 * A completion without LK_IO_F_MORE is the operation's last; its id is invalid from then on.
 *
 * Cancellation: lk_io_cancel makes an operation end with -ECANCELED (or with its own result, when it
 * finished first). Either way exactly one final completion follows; a receive's buffers already delivered
 * stay the caller's, and one the operation held is returned to the pool.
 *
 * A socket is used either with these operations or with lk_poller_add, never both.
 *
 * Threading: the poller's thread only (see lk_poller.h).
 */
#ifndef LK_IO_H
#define LK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lk_poller.h"

enum {
    LK_IO_F_MORE = 1u << 0,   /* the operation continues: more completions follow */
    LK_IO_F_BUFFER = 1u << 1, /* `buffer` names a pool buffer the caller now owns */
};

/* lk_io_setup flags. */
enum {
    LK_IO_NO_BUFFER_RING = 1u << 0, /* io_uring: single-shot receives even where a buffer ring would work */
};

typedef struct lk_io_completion {
    uint64_t token;  /* the caller's token, as given when the operation started */
    int32_t result;  /* >= 0 or -errno (see above) */
    uint32_t flags;  /* LK_IO_F_* */
    uint32_t buffer; /* with LK_IO_F_BUFFER: the buffer's id */
    uint32_t reserved;
} lk_io_completion;

/*
 * Prepares the poller for operations: `count` receive buffers of `size` bytes each, in `memory` (count *
 * size bytes, provided by the caller and valid until the poller is destroyed). count: a power of two,
 * 1...32768; size: 1...2^31. Called once, before the first operation.
 * Returns 0; -EINVAL (bad count or size, or called twice); -ENOMEM.
 */
int lk_io_setup(lk_poller *p, void *memory, uint32_t count, uint32_t size, uint32_t flags);

/* True when receives use a kernel provided-buffer ring (io_uring with multishot receive). */
bool lk_io_uses_buffer_ring(const lk_poller *p);

/* Start an operation; `token` comes back in its completions. Return an id (>= 0) for lk_io_cancel, or
 * -EINVAL (lk_io_setup not called, negative fd, bad length), -ENOMEM. An operation that cannot be submitted
 * now (a full submission queue) waits and is submitted at a later wait; one the backend refuses ends with
 * that error as its final completion (epoll: -errno from epoll_ctl(2), e.g. -EPERM for an fd that cannot be
 * polled, and -EEXIST for a second receive or accept, or a second send or connect, on one socket at a time:
 * keep to one reader and one writer per socket on either backend). */
int64_t lk_io_accept(lk_poller *p, int fd, uint64_t token);
int64_t lk_io_recv(lk_poller *p, int fd, uint64_t token);
int64_t lk_io_send(lk_poller *p, int fd, const void *data, uint32_t length, uint64_t token);
int64_t lk_io_connect(lk_poller *p, int fd, const struct sockaddr *address, socklen_t length, uint64_t token);
int64_t lk_io_close(lk_poller *p, int fd, uint64_t token);

/* Requests the end of operation `id`. Returns 0; -ENOENT when it has already ended (its final completion
 * is queued or taken); -EALREADY when cancellation was already requested; -EBUSY (io_uring: no room for the
 * cancellation; retry after a wait); -ENOMEM. */
int lk_io_cancel(lk_poller *p, int64_t id);

/* Moves up to max completions into out; returns how many. */
int lk_io_completions(lk_poller *p, lk_io_completion *out, int max);

/* Operations started and not yet ended (their final completion not yet taken by lk_io_completions). */
uint32_t lk_io_in_flight(const lk_poller *p);

/* The memory of buffer `id` (of the size given to lk_io_setup). */
void *lk_io_buffer(lk_poller *p, uint32_t id);
/* Gives buffer `id`, delivered by a receive, back to the pool. */
void lk_io_buffer_release(lk_poller *p, uint32_t id);
/* Buffers delivered and not yet released. */
uint32_t lk_io_buffers_lent(const lk_poller *p);

#endif
