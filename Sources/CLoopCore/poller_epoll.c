/*
 * poller_epoll.c — the epoll backend. User fds are level-triggered; the wake eventfd is edge-triggered, so
 * every eventfd write produces one event without the loop ever reading the counter. Waits use
 * epoll_pwait2 for a nanosecond timeout where the kernel has it (5.11+), else epoll_wait rounded up to
 * whole milliseconds (never early: a timer must not fire before its deadline).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "fault_hook.h"
#include "poller_impl.h"

#define LK_WAKE_TOKEN UINT64_MAX

typedef struct lk_epoll_poller {
    lk_poller base;
    int epfd;
    int use_pwait2; /* 1 until the kernel answers ENOSYS */
    struct epoll_event *buf;
    int buf_len;
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
        if (count == max) break; /* level-triggered: it will be reported again */
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
    free(p);
}

static const lk_poller_ops epoll_ops = {
    .add = epoll_add,
    .modify = epoll_modify,
    .remove = epoll_remove,
    .wait = epoll_poll_wait,
    .destroy = epoll_destroy,
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
