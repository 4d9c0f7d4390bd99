/*
 * io.c — completion operations (lk_io.h): the operation table, the completion queue, the buffer pool and
 * the pending list, shared by both backends; the backends arm and cancel (io_impl.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault_hook.h"
#include "poller_impl.h"

/* ---- Completions ---- */

bool lk__io_has_room(const lk_io_state *io) { return io->done_len - io->done_head < LK_IO_DONE_LIMIT; }

static bool reserve_done(lk_io_state *io) {
    if (io->done_head == io->done_len) io->done_head = io->done_len = 0;
    if (io->done_len < io->done_cap) return true;
    if (io->done_head > 0) { /* slide the live part down */
        memmove(io->done, &io->done[io->done_head], (io->done_len - io->done_head) * sizeof(*io->done));
        io->done_len -= io->done_head;
        io->done_head = 0;
        return true;
    }
    size_t cap = io->done_cap ? io->done_cap * 2 : 256;
    lk_io_completion *d = realloc(io->done, cap * sizeof(*d));
    if (d == NULL) return false;
    io->done = d;
    io->done_cap = cap;
    return true;
}

static void free_op(lk_io_state *io, lk_io_op *op) {
    op->live = false;
    op->in_kernel = false;
    op->cancel_requested = false;
    op->gen = (op->gen + 1) & LK_IO_GEN_MASK;
    io->free_slots[io->free_slots_len++] = op->slot; /* room: free_slots has slots_len entries */
}

bool lk__io_complete(lk_io_state *io, lk_io_op *op, int32_t result, uint32_t flags, uint32_t buffer) {
    bool final = (flags & LK_IO_F_MORE) == 0;
    if (!final && !lk__io_has_room(io)) return false;
    if (!reserve_done(io)) {
        if (!final) return false;
        /* No memory for a final completion: keep the op and deliver -ECANCELED-or-result later from the
         * pending list (a final completion is never dropped). */
        op->cancel_requested = true;
        lk__io_make_pending(io, op);
        return false;
    }
    io->done[io->done_len++] = (lk_io_completion){
        .token = op->token, .result = result, .flags = flags, .buffer = buffer};
    if (flags & LK_IO_F_BUFFER) io->lent++;
    if (final) free_op(io, op);
    return true;
}

int lk_io_completions(lk_poller *p, lk_io_completion *out, int max) {
    lk__owner_check(&p->loop, "lk_io_completions");
    lk_io_state *io = &p->io;
    int n = 0;
    while (n < max && io->done_head < io->done_len) {
        out[n] = io->done[io->done_head++];
        if ((out[n].flags & LK_IO_F_MORE) == 0) io->in_flight--;
        n++;
    }
    return n;
}

uint32_t lk_io_in_flight(const lk_poller *p) { return p->io.in_flight; }

/* ---- Buffers ---- */

uint32_t lk__io_take_buffer(lk_io_state *io) {
    if (lk__fault(LK_FAULT_IO_NOBUFS) != 0 || io->free_buffers_len == 0) return LK_IO_NO_BUFFER;
    return io->free_buffers[--io->free_buffers_len];
}

void lk__io_put_buffer(lk_io_state *io, uint32_t id) { io->free_buffers[io->free_buffers_len++] = id; }

void *lk_io_buffer(lk_poller *p, uint32_t id) {
    LK_ASSERT(p->io.ready && id < p->io.buffer_count, "lk_io_buffer: no such buffer");
    return p->io.memory + (size_t)id * p->io.buffer_size;
}

void lk_io_buffer_release(lk_poller *p, uint32_t id) {
    lk__owner_check(&p->loop, "lk_io_buffer_release");
    lk_io_state *io = &p->io;
    LK_ASSERT(io->ready && id < io->buffer_count && io->lent > 0, "lk_io_buffer_release: not a lent buffer");
    io->lent--;
    if (io->buffer_ring) p->ops->io_ring_release(p, id);
    else lk__io_put_buffer(io, id);
}

uint32_t lk_io_buffers_lent(const lk_poller *p) { return p->io.lent; }

bool lk_io_uses_buffer_ring(const lk_poller *p) { return p->io.buffer_ring; }

/* ---- Operations ---- */

lk_io_op *lk__io_op(lk_io_state *io, uint32_t slot, uint32_t gen) {
    if (slot >= io->slots_len) return NULL;
    lk_io_op *op = io->slots[slot];
    return (op->live && op->gen == gen) ? op : NULL;
}

static lk_io_op *new_op(lk_io_state *io) {
    if (io->free_slots_len == 0) {
        if (io->slots_len >= LK_IO_MAX_SLOTS) return NULL;
        uint32_t len = io->slots_len ? io->slots_len * 2 : 64;
        lk_io_op **s = realloc(io->slots, len * sizeof(*s));
        if (s == NULL) return NULL;
        io->slots = s;
        uint32_t *f = realloc(io->free_slots, len * sizeof(*f));
        if (f == NULL) return NULL;
        io->free_slots = f;
        uint32_t i = io->slots_len;
        for (; i < len; i++) {
            s[i] = calloc(1, sizeof(lk_io_op));
            if (s[i] == NULL) break;
            s[i]->slot = i;
        }
        if (i == io->slots_len) return NULL;
        for (uint32_t j = i; j > io->slots_len; j--) f[io->free_slots_len++] = j - 1;
        io->slots_len = i;
    }
    lk_io_op *op = io->slots[io->free_slots[--io->free_slots_len]];
    op->live = true;
    op->pending = false;
    op->in_kernel = false;
    op->cancel_requested = false;
    op->buffer = LK_IO_NO_BUFFER;
    return op;
}

static int64_t op_id(const lk_io_op *op) { return (int64_t)op->gen << LK_IO_SLOT_BITS | op->slot; }

void lk__io_make_pending(lk_io_state *io, lk_io_op *op) {
    if (op->pending) return;
    op->pending = true;
    op->next_pending = NULL;
    if (io->pending_tail) io->pending_tail->next_pending = op;
    else io->pending_head = op;
    io->pending_tail = op;
}

static void unlink_pending(lk_io_state *io, lk_io_op *op) {
    lk_io_op **link = &io->pending_head, *prev = NULL;
    while (*link != NULL && *link != op) {
        prev = *link;
        link = &(*link)->next_pending;
    }
    if (*link == NULL) return;
    *link = op->next_pending;
    if (io->pending_tail == op) io->pending_tail = prev;
    op->pending = false;
}

static bool buffer_available(const lk_io_state *io) {
    return io->buffer_ring ? io->lent < io->buffer_count : io->free_buffers_len > 0;
}

/* Arms op through the backend; an op that cannot be armed now goes pending, one that fails ends. */
static void arm(lk_poller *p, lk_io_op *op) {
    int rc = p->ops->io_arm(p, op);
    if (rc == 0) return;
    if (rc == -ENOBUFS || rc == -EBUSY) lk__io_make_pending(&p->io, op);
    else lk__io_complete(&p->io, op, rc, 0, 0);
}

bool lk__io_before_wait(lk_poller *p) {
    lk_io_state *io = &p->io;
    if (!io->ready) return false;
    lk_io_op *list = io->pending_head;
    io->pending_head = io->pending_tail = NULL;
    while (list != NULL) {
        lk_io_op *op = list;
        list = op->next_pending;
        op->pending = false;
        if (op->cancel_requested) lk__io_complete(io, op, -ECANCELED, 0, 0);
        else if (op->kind == LK_IO_RECV && !buffer_available(io)) lk__io_make_pending(io, op);
        else arm(p, op);
    }
    /* An op still pending with a buffer to use could not be armed for another reason (a full submission
     * queue, an injected fault): the wait must not block on it, as nothing else might end the wait. One
     * waiting for a buffer blocks as usual: the buffer comes back from the loop's own code before its next
     * wait. */
    return io->done_head < io->done_len || (io->pending_head != NULL && buffer_available(io));
}

static int64_t start(lk_poller *p, lk_io_op *op) {
    int64_t id = op_id(op);
    p->io.in_flight++;
    arm(p, op);
    return id;
}

static lk_io_op *begin(lk_poller *p, int fd, lk_io_kind kind, uint64_t token, int64_t *error) {
    *error = 0;
    if (!p->io.ready || fd < 0) {
        *error = -EINVAL;
        return NULL;
    }
    lk_io_op *op = new_op(&p->io);
    if (op == NULL) {
        *error = -ENOMEM;
        return NULL;
    }
    op->kind = kind;
    op->fd = fd;
    op->token = token;
    return op;
}

int64_t lk_io_accept(lk_poller *p, int fd, uint64_t token) {
    lk__owner_check(&p->loop, "lk_io_accept");
    int64_t e;
    lk_io_op *op = begin(p, fd, LK_IO_ACCEPT, token, &e);
    return op ? start(p, op) : e;
}

int64_t lk_io_recv(lk_poller *p, int fd, uint64_t token) {
    lk__owner_check(&p->loop, "lk_io_recv");
    int64_t e;
    lk_io_op *op = begin(p, fd, LK_IO_RECV, token, &e);
    return op ? start(p, op) : e;
}

int64_t lk_io_send(lk_poller *p, int fd, const void *data, uint32_t length, uint64_t token) {
    lk__owner_check(&p->loop, "lk_io_send");
    if (data == NULL || length == 0 || length > INT32_MAX) return -EINVAL;
    int64_t e;
    lk_io_op *op = begin(p, fd, LK_IO_SEND, token, &e);
    if (op == NULL) return e;
    op->data = data;
    op->length = length;
    return start(p, op);
}

int64_t lk_io_connect(lk_poller *p, int fd, const struct sockaddr *address, socklen_t length, uint64_t token) {
    lk__owner_check(&p->loop, "lk_io_connect");
    if (address == NULL || length == 0 || length > sizeof(struct sockaddr_storage)) return -EINVAL;
    int64_t e;
    lk_io_op *op = begin(p, fd, LK_IO_CONNECT, token, &e);
    if (op == NULL) return e;
    memcpy(&op->address, address, length);
    op->address_length = length;
    return start(p, op);
}

int64_t lk_io_close(lk_poller *p, int fd, uint64_t token) {
    lk__owner_check(&p->loop, "lk_io_close");
    int64_t e;
    lk_io_op *op = begin(p, fd, LK_IO_CLOSE, token, &e);
    return op ? start(p, op) : e;
}

int lk_io_cancel(lk_poller *p, int64_t id) {
    lk__owner_check(&p->loop, "lk_io_cancel");
    if (id < 0) return -ENOENT;
    lk_io_op *op = lk__io_op(&p->io, (uint32_t)(id & (LK_IO_MAX_SLOTS - 1)), (uint32_t)(id >> LK_IO_SLOT_BITS));
    if (op == NULL) return -ENOENT;
    if (op->cancel_requested) return -EALREADY;
    if (op->pending && !op->in_kernel) {
        unlink_pending(&p->io, op);
        return lk__io_complete(&p->io, op, -ECANCELED, 0, 0) ? 0 : -ENOMEM;
    }
    int rc = p->ops->io_cancel(p, op);
    if (rc == 0) op->cancel_requested = op->live; /* still live: its final completion is on the way */
    return rc;
}

/* ---- Setup and teardown ---- */

int lk_io_setup(lk_poller *p, void *memory, uint32_t count, uint32_t size, uint32_t flags) {
    lk__owner_check(&p->loop, "lk_io_setup");
    lk_io_state *io = &p->io;
    if (io->ready || memory == NULL || count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0 ||
        size > INT32_MAX || (flags & ~(uint32_t)LK_IO_NO_BUFFER_RING) != 0)
        return -EINVAL;
    io->memory = memory;
    io->buffer_count = count;
    io->buffer_size = size;
    io->free_buffers = malloc(count * sizeof(uint32_t));
    if (io->free_buffers == NULL) return -ENOMEM;
    int rc = p->ops->io_setup(p, flags);
    if (rc != 0) {
        free(io->free_buffers);
        io->free_buffers = NULL;
        return rc;
    }
    if (!io->buffer_ring)
        for (uint32_t i = count; i > 0; i--) io->free_buffers[io->free_buffers_len++] = i - 1;
    io->ready = true;
    return 0;
}

void lk__io_destroy(lk_io_state *io) {
    for (uint32_t i = 0; i < io->slots_len; i++) free(io->slots[i]);
    free(io->slots);
    free(io->free_slots);
    free(io->done);
    free(io->free_buffers);
    memset(io, 0, sizeof(*io));
}
