/*
 * io_impl.h — the completion operations' shared state (io.c) and the backends' part of it (lk_io.h has the
 * contract). Loop thread only, like the poller that embeds it: nothing here is atomic.
 *
 * An operation lives in a slot of a table of separately allocated records (so a record never moves: the
 * kernel may read a connect's address from it), found by id = generation << 24 | slot. Its final completion
 * frees the slot and bumps the generation, so a late lk_io_cancel on a reused slot is refused (-ENOENT).
 *
 * Buffers: one pool in caller memory. With a buffer ring the kernel holds every buffer not lent to the
 * caller; otherwise a stack of free ids, from which a receive takes one per chunk (or per single-shot
 * receive in the kernel).
 *
 * Pending: an operation waiting to be (re-)armed — a receive with no buffer to use, a multishot the kernel
 * ended early, an arm that found the submission queue full. lk__io_before_wait arms them before each wait.
 */
#ifndef LK_IO_IMPL_H
#define LK_IO_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lk_io.h"

typedef enum lk_io_kind {
    LK_IO_ACCEPT = 1,
    LK_IO_RECV,
    LK_IO_SEND,
    LK_IO_CONNECT,
    LK_IO_CLOSE,
} lk_io_kind;

#define LK_IO_NO_BUFFER UINT32_MAX
#define LK_IO_SLOT_BITS 24
#define LK_IO_MAX_SLOTS (1u << LK_IO_SLOT_BITS)
#define LK_IO_GEN_MASK 0x3fffffffu /* 30 bits: io_uring's user_data carries it (poller_uring_impl.h) */

typedef struct lk_io_op {
    uint64_t token;
    uint32_t slot;
    uint32_t gen;           /* bumped when the slot is freed */
    lk_io_kind kind;
    int fd;
    bool live;              /* started, final completion not yet queued */
    bool in_kernel;         /* io_uring: a request is in the ring; epoll: waiting for readiness */
    bool pending;           /* on the pending list */
    bool cancel_requested;
    uint32_t buffer;        /* io_uring single-shot receive: the buffer the kernel fills */
    const uint8_t *data;    /* send */
    uint32_t length;
    struct sockaddr_storage address; /* connect */
    socklen_t address_length;
    struct lk_io_op *next_pending;
} lk_io_op;

typedef struct lk_io_state {
    bool ready;             /* lk_io_setup done */
    bool buffer_ring;       /* receives use the kernel's provided-buffer ring */
    lk_io_op **slots;
    uint32_t slots_len;
    uint32_t *free_slots;   /* stack of free slot indexes */
    uint32_t free_slots_len;
    uint32_t in_flight;
    lk_io_completion *done; /* completions not yet taken: done[done_head..<done_len] */
    size_t done_head, done_len, done_cap;
    uint8_t *memory;
    uint32_t buffer_count, buffer_size;
    uint32_t *free_buffers; /* without a buffer ring: stack of free ids */
    uint32_t free_buffers_len;
    uint32_t lent;          /* delivered to the caller and not released */
    lk_io_op *pending_head, *pending_tail;
} lk_io_state;

/* Limit on queued completions a backend produces from the kernel or from readiness in one go; completions
 * beyond it wait in the kernel's queue (or for the next report of readiness). */
#define LK_IO_DONE_LIMIT 4096u

/* Backend hooks (lk_poller_ops). io_arm starts or re-starts op: 0 when armed (or completed at once), -ENOBUFS
 * when a receive found no buffer (op goes pending), -EBUSY when the submission queue was full (op goes
 * pending), other -errno to end the operation with. io_cancel asks the backend to end an op that is armed. */

/* Queues a completion of op; a final one (no LK_IO_F_MORE) frees the op. False when no room (done_len has
 * reached LK_IO_DONE_LIMIT, or memory ran out) and `flags` has LK_IO_F_MORE; a final completion always
 * gets room (the queue grows, and at worst the op is kept and retried from the pending list). */
bool lk__io_complete(lk_io_state *io, lk_io_op *op, int32_t result, uint32_t flags, uint32_t buffer);
/* Whether the queue has room for a completion that continues an operation. */
bool lk__io_has_room(const lk_io_state *io);
/* Puts op on the pending list (once). */
void lk__io_make_pending(lk_io_state *io, lk_io_op *op);
/* A free buffer id from the stack, or LK_IO_NO_BUFFER (also by injection: LK_FAULT_IO_NOBUFS). */
uint32_t lk__io_take_buffer(lk_io_state *io);
/* Returns an id to the stack (a buffer that was never delivered). */
void lk__io_put_buffer(lk_io_state *io, uint32_t id);
/* The op for a slot and generation, or NULL when stale. */
lk_io_op *lk__io_op(lk_io_state *io, uint32_t slot, uint32_t gen);
void lk__io_destroy(lk_io_state *io);

#endif
