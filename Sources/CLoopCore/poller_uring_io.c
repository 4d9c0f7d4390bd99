/*
 * poller_uring_io.c — completion operations on the io_uring backend (lk_io.h, io_impl.h).
 *
 * Each operation is one request whose user_data names its slot and generation (UD_KIND_OP). accept and, with
 * a buffer ring, recv are multishot; when the kernel ends a multishot request that has not failed (no
 * IORING_CQE_F_MORE on a successful completion, e.g. after a completion-queue overflow) the operation goes
 * pending and is re-armed before the next wait, so the caller sees one continuous operation.
 *
 * Buffer ring (buffer group 0): every pool buffer not lent to the caller is in the ring. A receive that finds
 * the ring empty completes with -ENOBUFS and its multishot ends; the operation goes pending until a buffer is
 * back (lk__io_before_wait checks). Without a ring, each single-shot receive takes a buffer from the pool's
 * stack when armed and re-arms after each chunk.
 *
 * Cancellation: IORING_OP_ASYNC_CANCEL by user_data; the cancel request's own completion is ignored. The
 * operation's final completion (-ECANCELED, or its own result when it finished first) ends it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "fault_hook.h"
#include "poller_uring_impl.h"

#define LK_URING_BUFFER_GROUP 0

static uint64_t op_user_data(const lk_io_op *op) {
    return (UD_KIND_OP << 62) | ((uint64_t)(op->gen & UD_GEN_MASK) << 32) | op->slot;
}

/* Multishot receive with buffer select needs 6.0 (a ring registers from 5.19, but IORING_RECV_MULTISHOT
 * arrived later and an older kernel fails the request with -EINVAL). */
static bool kernel_has_multishot_recv(void) {
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    return major > 6 || (major == 6 && minor >= 0);
}

int lk__uring_io_setup(lk_poller *base, uint32_t flags) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    lk_io_state *io = &base->io;
    if ((flags & LK_IO_NO_BUFFER_RING) || !kernel_has_multishot_recv()) return 0;
    long page = sysconf(_SC_PAGESIZE);
    size_t bytes = (size_t)io->buffer_count * sizeof(struct io_uring_buf);
    bytes = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
    void *memory = NULL;
    if (posix_memalign(&memory, (size_t)page, bytes) != 0) return -ENOMEM;
    memset(memory, 0, bytes);
    struct io_uring_buf_ring *br = memory;
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = io->buffer_count;
    reg.bgid = LK_URING_BUFFER_GROUP;
    if (io_uring_register_buf_ring(&p->ring, &reg, 0) != 0) { /* EINVAL before 5.19: single-shot receives */
        free(memory);
        return 0;
    }
    int mask = io_uring_buf_ring_mask(io->buffer_count);
    for (uint32_t i = 0; i < io->buffer_count; i++)
        io_uring_buf_ring_add(br, io->memory + (size_t)i * io->buffer_size, io->buffer_size, (unsigned short)i,
                              mask, (int)i);
    io_uring_buf_ring_advance(br, (int)io->buffer_count);
    p->buf_ring = br;
    io->buffer_ring = true;
    return 0;
}

void lk__uring_io_ring_release(lk_poller *base, uint32_t id) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    lk_io_state *io = &base->io;
    io_uring_buf_ring_add(p->buf_ring, io->memory + (size_t)id * io->buffer_size, io->buffer_size,
                          (unsigned short)id, io_uring_buf_ring_mask(io->buffer_count), 0);
    io_uring_buf_ring_advance(p->buf_ring, 1); /* a release store of the tail: the kernel sees the entry */
}

int lk__uring_io_arm(lk_poller *base, lk_io_op *op) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    lk_io_state *io = &base->io;
    uint32_t buffer = LK_IO_NO_BUFFER;
    if (op->kind == LK_IO_RECV) {
        if (io->buffer_ring) {
            if (lk__fault(LK_FAULT_IO_NOBUFS) != 0) return -ENOBUFS; /* as if the ring were dry */
        } else if ((buffer = lk__io_take_buffer(io)) == LK_IO_NO_BUFFER) {
            return -ENOBUFS;
        }
    }
    struct io_uring_sqe *sqe = lk__uring_get_sqe(p);
    if (sqe == NULL) {
        if (buffer != LK_IO_NO_BUFFER) lk__io_put_buffer(io, buffer);
        return -EBUSY;
    }
    switch (op->kind) {
    case LK_IO_ACCEPT:
        io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case LK_IO_RECV:
        if (io->buffer_ring) {
            io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = LK_URING_BUFFER_GROUP;
        } else {
            io_uring_prep_recv(sqe, op->fd, io->memory + (size_t)buffer * io->buffer_size, io->buffer_size, 0);
        }
        break;
    case LK_IO_SEND:
        io_uring_prep_send(sqe, op->fd, op->data, op->length, MSG_NOSIGNAL);
        break;
    case LK_IO_CONNECT:
        io_uring_prep_connect(sqe, op->fd, (const struct sockaddr *)&op->address, op->address_length);
        break;
    case LK_IO_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    }
    io_uring_sqe_set_data64(sqe, op_user_data(op));
    op->buffer = buffer;
    op->in_kernel = true;
    return 0;
}

int lk__uring_io_cancel(lk_poller *base, lk_io_op *op) {
    lk_uring_poller *p = (lk_uring_poller *)base;
    if (!op->in_kernel) return 0; /* pending ops are ended by io.c */
    struct io_uring_sqe *sqe = lk__uring_get_sqe(p);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_cancel64(sqe, op_user_data(op), 0);
    io_uring_sqe_set_data64(sqe, UD_KIND_IGNORE << 62);
    /* Submitted now, not with the next wait: a multishot receive paused for backpressure stops taking
     * buffers sooner. A failed submission leaves it queued for the next wait. */
    lk__uring_submit(p);
    return 0;
}

/* The kernel ended a multishot request (or a single-shot receive) of an operation that goes on: re-arm it
 * before the next wait, or end it if cancellation was requested meanwhile. */
static void continue_op(lk_io_state *io, lk_io_op *op) {
    if (op->cancel_requested) lk__io_complete(io, op, -ECANCELED, 0, 0);
    else lk__io_make_pending(io, op);
}

void lk__uring_io_complete(lk_uring_poller *p, const struct io_uring_cqe *cqe) {
    lk_io_state *io = &p->base.io;
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    bool has_buffer = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    uint32_t ring_buffer = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    lk_io_op *op = lk__io_op(io, (uint32_t)ud, (uint32_t)(ud >> 32) & UD_GEN_MASK);
    if (op == NULL) { /* not expected: every request's last completion ends its op */
        if (has_buffer) lk__uring_io_ring_release(&p->base, ring_buffer); /* never lent: straight back */
        return;
    }
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more) op->in_kernel = false;
    int res = cqe->res;
    switch (op->kind) {
    case LK_IO_ACCEPT:
        if (res < 0) {
            lk__io_complete(io, op, res, 0, 0);
            return;
        }
        lk__io_complete(io, op, res, LK_IO_F_MORE, 0); /* room: checked by the caller for each CQE */
        if (!more) continue_op(io, op);
        return;
    case LK_IO_RECV:
        if (!io->buffer_ring) {
            uint32_t buffer = op->buffer;
            op->buffer = LK_IO_NO_BUFFER;
            if (res <= 0) {
                lk__io_put_buffer(io, buffer);
                lk__io_complete(io, op, res, 0, 0);
                return;
            }
            lk__io_complete(io, op, res, LK_IO_F_MORE | LK_IO_F_BUFFER, buffer);
            continue_op(io, op);
            return;
        }
        if (res > 0 && has_buffer) {
            lk__io_complete(io, op, res, LK_IO_F_MORE | LK_IO_F_BUFFER, ring_buffer);
            if (!more) continue_op(io, op);
            return;
        }
        if (has_buffer) { /* end of stream or an error with a buffer picked: straight back into the ring */
            lk__uring_io_ring_release(&p->base, ring_buffer);
        }
        if (res == -ENOBUFS && !more) {
            continue_op(io, op); /* the ring ran dry: resume once a buffer is back */
            return;
        }
        if (!more) lk__io_complete(io, op, res, 0, 0);
        return;
    case LK_IO_SEND:
    case LK_IO_CONNECT:
    case LK_IO_CLOSE:
        lk__io_complete(io, op, res, 0, 0);
        return;
    }
}

void lk__uring_io_destroy(lk_uring_poller *p) {
    free(p->buf_ring); /* the ring is gone: the kernel has let go of it */
    lk__io_destroy(&p->base.io);
}
