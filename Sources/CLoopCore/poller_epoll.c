/*
 * poller_epoll.c — the epoll backend. User fds are level-triggered; the wake eventfd is edge-triggered, so
 * every eventfd write produces one event without the loop ever reading the counter. Waits use
 * epoll_pwait2 for a nanosecond timeout where the kernel has it (5.11+), else epoll_wait rounded up to
 * whole milliseconds (never early: a timer must not fire before its deadline).
 *
 * Completion operations (lk_io.h) are carried out with readiness and non-blocking system calls: a socket
 * with operations joins the set (its data tagged LK_OP_TAG) and is watched for EPOLLIN while it has a reader
 * (accept or recv) and EPOLLOUT while it has a writer (send or connect); with neither it leaves the set,
 * since EPOLLERR and EPOLLHUP would otherwise be reported on every wait. Each report runs the operation's
 * system call; EAGAIN waits for the next report (level-triggered), anything else completes the operation.
 * A send and a connect are tried at once when started. A receive takes a pool buffer per chunk; with none
 * free it leaves the set's interest and goes pending (io.c) until one is back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "fault_hook.h"
#include "poller_impl.h"

#define LK_WAKE_TOKEN UINT64_MAX
#define LK_OP_TAG (1ull << 62) /* in an event's data: the fd carries completion operations */
#define LK_ACCEPT_BATCH 64     /* accepts per report of readiness, so one listener cannot hold the loop */

/* A socket's completion operations: at most one reader and one writer. */
typedef struct epoll_io_fd {
    lk_io_op *reader;  /* accept or recv waiting for EPOLLIN */
    lk_io_op *writer;  /* send or connect waiting for EPOLLOUT */
    uint32_t interest; /* the events it is in the set with; 0: not in the set */
} epoll_io_fd;

typedef struct lk_epoll_poller {
    lk_poller base;
    int epfd;
    int use_pwait2; /* 1 until the kernel answers ENOSYS */
    struct epoll_event *buf;
    int buf_len;
    epoll_io_fd *io_fds; /* indexed by fd, grown geometrically */
    size_t io_fds_len;
} lk_epoll_poller;

static uint32_t to_epoll(uint32_t events) {
    uint32_t e = 0;
    if (events & LK_POLL_READ) e |= EPOLLIN | EPOLLPRI;
    if (events & LK_POLL_WRITE) e |= EPOLLOUT;
    if (events & LK_POLL_HANGUP) e |= EPOLLRDHUP;
    return e; /* EPOLLERR and EPOLLHUP are always reported */
}

static uint32_t from_epoll(uint32_t e) {
    uint32_t events = 0;
    if (e & (EPOLLIN | EPOLLPRI)) events |= LK_POLL_READ;
    if (e & EPOLLOUT) events |= LK_POLL_WRITE;
    if (e & EPOLLERR) events |= LK_POLL_ERROR;
    if (e & (EPOLLHUP | EPOLLRDHUP)) events |= LK_POLL_HANGUP;
    return events;
}

/* epoll_ctl(2) through the fault-injection hook; EINTR (not documented for epoll_ctl, but harmless to
 * honour) is retried. 0 or -errno. */
static int hooked_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
    for (;;) {
        int e = lk__fault(LK_FAULT_EPOLL_CTL);
        if (e == 0) e = epoll_ctl(epfd, op, fd, ev) == 0 ? 0 : errno;
        if (e != EINTR) return -e;
    }
}

static int ctl(lk_epoll_poller *p, int op, int fd, uint32_t events) {
    struct epoll_event ev = {.events = to_epoll(events), .data = {.u64 = (uint64_t)(uint32_t)fd}};
    return hooked_ctl(p->epfd, op, fd, &ev);
}

static int epoll_add(lk_poller *base, int fd, uint32_t events) {
    return ctl((lk_epoll_poller *)base, EPOLL_CTL_ADD, fd, events);
}

static int epoll_modify(lk_poller *base, int fd, uint32_t events) {
    return ctl((lk_epoll_poller *)base, EPOLL_CTL_MOD, fd, events);
}

static int epoll_remove(lk_poller *base, int fd) {
    lk_epoll_poller *p = (lk_epoll_poller *)base;
    /* A closed fd has already left the set: report it as unknown, the same answer as io_uring's. */
    int rc = hooked_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    return rc == -EBADF ? -ENOENT : rc;
}

/* ---- Completion operations ---- */

static epoll_io_fd *io_fd(lk_epoll_poller *p, int fd) {
    if ((size_t)fd >= p->io_fds_len) {
        size_t len = p->io_fds_len ? p->io_fds_len : 64;
        while (len <= (size_t)fd) len *= 2;
        epoll_io_fd *t = realloc(p->io_fds, len * sizeof(*t));
        if (t == NULL) return NULL;
        memset(&t[p->io_fds_len], 0, (len - p->io_fds_len) * sizeof(*t));
        p->io_fds = t;
        p->io_fds_len = len;
    }
    return &p->io_fds[fd];
}

/* Brings the set's interest in fd in line with its operations. 0 or -errno from epoll_ctl. */
static int update_interest(lk_epoll_poller *p, int fd, epoll_io_fd *f) {
    uint32_t want = (f->reader ? EPOLLIN : 0) | (f->writer ? EPOLLOUT : 0);
    if (want == f->interest) return 0;
    int op = want == 0 ? EPOLL_CTL_DEL : f->interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    struct epoll_event ev = {.events = want, .data = {.u64 = LK_OP_TAG | (uint32_t)fd}};
    int rc = hooked_ctl(p->epfd, op, fd, &ev);
    if (rc == 0 || op == EPOLL_CTL_DEL) f->interest = want; /* a failed DEL: the fd was closed, and left */
    return rc;
}

/* Takes op off its fd (it completes or is cancelled). */
static void detach(lk_epoll_poller *p, lk_io_op *op) {
    epoll_io_fd *f = &p->io_fds[op->fd];
    if (f->reader == op) f->reader = NULL;
    if (f->writer == op) f->writer = NULL;
    op->in_kernel = false;
    update_interest(p, op->fd, f);
}

static void finish(lk_epoll_poller *p, lk_io_op *op, int32_t result) {
    detach(p, op);
    lk__io_complete(&p->base.io, op, result, 0, 0);
}

/* A send or connect attempt: true when the operation completed (or failed). */
static bool try_write(lk_epoll_poller *p, lk_io_op *op, bool attached) {
    int32_t result;
    if (op->kind == LK_IO_SEND) {
        ssize_t n = send(op->fd, op->data, op->length, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
        result = n < 0 ? -errno : (int32_t)n;
    } else {
        int error = 0;
        socklen_t len = sizeof(error);
        if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
        if (error == EINPROGRESS || error == EALREADY) return false;
        result = -error;
    }
    if (attached) finish(p, op, result);
    else lk__io_complete(&p->base.io, op, result, 0, 0);
    return true;
}

static void run_accept(lk_epoll_poller *p, lk_io_op *op) {
    for (int i = 0; i < LK_ACCEPT_BATCH && lk__io_has_room(&p->base.io); i++) {
        int fd = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            lk__io_complete(&p->base.io, op, fd, LK_IO_F_MORE, 0);
        } else if (errno == EAGAIN) {
            return;
        } else if (errno != EINTR && errno != ECONNABORTED) {
            finish(p, op, -errno);
            return;
        }
    }
}

static void run_recv(lk_epoll_poller *p, lk_io_op *op) {
    lk_io_state *io = &p->base.io;
    if (!lk__io_has_room(io)) return;
    uint32_t buffer = lk__io_take_buffer(io);
    if (buffer == LK_IO_NO_BUFFER) { /* none free: stop watching, resume when one is back */
        detach(p, op);
        lk__io_make_pending(io, op);
        return;
    }
    ssize_t n = recv(op->fd, io->memory + (size_t)buffer * io->buffer_size, io->buffer_size, 0);
    if (n > 0) {
        lk__io_complete(io, op, (int32_t)n, LK_IO_F_MORE | LK_IO_F_BUFFER, buffer);
        return;
    }
    int e = errno;
    lk__io_put_buffer(io, buffer);
    if (n == 0) finish(p, op, 0);
    else if (e != EAGAIN && e != EINTR) finish(p, op, -e);
}

/* One report of readiness for a socket with operations. */
static void run_ops(lk_epoll_poller *p, int fd, uint32_t events) {
    if ((size_t)fd >= p->io_fds_len) return;
    epoll_io_fd *f = &p->io_fds[fd];
    if (f->reader && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        if (f->reader->kind == LK_IO_ACCEPT) run_accept(p, f->reader);
        else run_recv(p, f->reader);
    }
    if (f->writer && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) try_write(p, f->writer, true);
}

static int epoll_io_setup(lk_poller *base, uint32_t flags) {
    (void)base;
    (void)flags;
    return 0;
}

static int epoll_io_arm(lk_poller *base, lk_io_op *op) {
    lk_epoll_poller *p = (lk_epoll_poller *)base;
    if (op->kind == LK_IO_CLOSE) {
        if ((size_t)op->fd < p->io_fds_len) {
            epoll_io_fd *f = &p->io_fds[op->fd];
            f->reader = f->writer = NULL; /* the caller has ended them (lk_io.h) */
            update_interest(p, op->fd, f);
        }
        lk__io_complete(&p->base.io, op, close(op->fd) == 0 ? 0 : -errno, 0, 0);
        return 0;
    }
    if (op->kind == LK_IO_SEND && try_write(p, op, false)) return 0;
    if (op->kind == LK_IO_CONNECT) {
        if (connect(op->fd, (const struct sockaddr *)&op->address, op->address_length) == 0) {
            lk__io_complete(&p->base.io, op, 0, 0, 0);
            return 0;
        }
        if (errno != EINPROGRESS && errno != EINTR) return -errno;
    }
    epoll_io_fd *f = io_fd(p, op->fd);
    if (f == NULL) return -ENOMEM;
    bool reads = op->kind == LK_IO_ACCEPT || op->kind == LK_IO_RECV;
    lk_io_op **role = reads ? &f->reader : &f->writer;
    if (*role != NULL) return -EEXIST; /* one reader and one writer per socket */
    *role = op;
    int rc = update_interest(p, op->fd, f);
    if (rc != 0) {
        *role = NULL;
        return rc == -ENOENT ? -EBADF : rc;
    }
    op->in_kernel = true;
    return 0;
}

static int epoll_io_cancel(lk_poller *base, lk_io_op *op) {
    lk_epoll_poller *p = (lk_epoll_poller *)base;
    if (!op->in_kernel) return 0;
    finish(p, op, -ECANCELED);
    return 0;
}

/* One epoll_pwait2 / epoll_wait; -1 with errno on failure (EINTR included: lk_poller_wait retries it). */
static int epoll_wait_ns(lk_epoll_poller *p, int n, int64_t timeout_ns) {
    if (lk__fault_errno(LK_FAULT_EPOLL_WAIT)) return -1;
    if (p->use_pwait2) {
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
        int rc = epoll_pwait2(p->epfd, p->buf, n, timeout_ns < 0 ? NULL : &ts, NULL);
        if (rc >= 0 || errno != ENOSYS) return rc;
        p->use_pwait2 = 0;
    }
    int ms;
    if (timeout_ns < 0) ms = -1;
    else if (timeout_ns >= (int64_t)INT32_MAX * 1000000) ms = INT32_MAX;
    else ms = (int)((timeout_ns + 999999) / 1000000);
    return epoll_wait(p->epfd, p->buf, n, ms);
}

static int epoll_poll_wait(lk_poller *base, int64_t timeout_ns, lk_poll_event *out, int max, bool *woken) {
    lk_epoll_poller *p = (lk_epoll_poller *)base;
    int want = max + 1; /* room for the wake event */
    if (want > p->buf_len) {
        struct epoll_event *b = realloc(p->buf, (size_t)want * sizeof(*b));
        if (b == NULL) return -ENOMEM;
        p->buf = b;
        p->buf_len = want;
    }
    int n = epoll_wait_ns(p, want, timeout_ns);
    if (n < 0) return -errno; /* EINTR is retried by lk_poller_wait */
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (p->buf[i].data.u64 == LK_WAKE_TOKEN) {
            *woken = true;
            continue;
        }
        if (p->buf[i].data.u64 & LK_OP_TAG) {
            run_ops(p, (int)(uint32_t)p->buf[i].data.u64, p->buf[i].events);
            continue;
        }
        if (count == max) continue; /* level-triggered: it will be reported again */
        out[count].fd = (int)(uint32_t)p->buf[i].data.u64;
        out[count].events = from_epoll(p->buf[i].events);
        count++;
    }
    return count;
}

static void epoll_destroy(lk_poller *base) {
    lk_epoll_poller *p = (lk_epoll_poller *)base;
    close(p->epfd);
    free(p->buf);
    free(p->io_fds);
    lk__io_destroy(&p->base.io);
    free(p);
}

static const lk_poller_ops epoll_ops = {
    .add = epoll_add,
    .modify = epoll_modify,
    .remove = epoll_remove,
    .wait = epoll_poll_wait,
    .destroy = epoll_destroy,
    .io_setup = epoll_io_setup,
    .io_arm = epoll_io_arm,
    .io_cancel = epoll_io_cancel,
    .io_ring_release = NULL, /* never a buffer ring */
};

int lk__poller_epoll_create(lk_poller **out, int wake_fd) {
    lk_epoll_poller *p = calloc(1, sizeof(*p));
    if (p == NULL) return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int e = errno;
        free(p);
        return -e;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data = {.u64 = LK_WAKE_TOKEN}};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
        int e = errno;
        close(p->epfd);
        free(p);
        return -e;
    }
    p->base.ops = &epoll_ops;
    p->base.backend = LK_BACKEND_EPOLL;
    p->base.wake_fd = wake_fd;
    p->use_pwait2 = 1;
    *out = &p->base;
    return 0;
}
