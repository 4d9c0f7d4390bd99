/*
 * poller.c — backend choice and the dispatch of lk_poller_* calls to the backend's ops.
 * Argument checks shared by both backends live here so they answer bad input identically.
 */
#include "poller_impl.h"

#include "lk_clock.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

const char *lk_backend_name(lk_backend b) {
    switch (b) {
    case LK_BACKEND_EPOLL: return "epoll";
    case LK_BACKEND_IO_URING: return "io_uring";
    case LK_BACKEND_AUTO: return "auto";
    }
    return "unknown";
}

/* An override value, if set, replaces the requested backend. -EINVAL for an unknown value. */
static int apply_override(lk_backend *requested, const char *v) {
    if (v == NULL || *v == '\0') return 0;
    if (strcmp(v, "epoll") == 0) *requested = LK_BACKEND_EPOLL;
    else if (strcmp(v, "io_uring") == 0 || strcmp(v, "uring") == 0) *requested = LK_BACKEND_IO_URING;
    else if (strcmp(v, "auto") == 0) *requested = LK_BACKEND_AUTO;
    else return -EINVAL;
    return 0;
}

int lk_poller_create(lk_poller **out, lk_backend requested, int wake_fd) {
    return lk_poller_create_for_testing(out, requested, wake_fd, getenv("LOOPKIT_BACKEND"));
}

static bool is_backend(lk_backend b) {
    return b == LK_BACKEND_AUTO || b == LK_BACKEND_EPOLL || b == LK_BACKEND_IO_URING;
}

/* The requested backend's constructor; AUTO falls back to epoll when io_uring is refused (ENOSYS, EPERM,
 * EINVAL on an old kernel, ENOMEM under memlock limits). */
static int create_backend(lk_poller **out, lk_backend requested, int wake_fd) {
    if (requested == LK_BACKEND_EPOLL) return lk__poller_epoll_create(out, wake_fd);
    int rc = lk__poller_uring_create(out, wake_fd);
    if (rc != 0 && requested == LK_BACKEND_AUTO) rc = lk__poller_epoll_create(out, wake_fd);
    return rc;
}

int lk_backend_probe(lk_backend b) {
    if (!is_backend(b)) return -EINVAL;
    int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) return -errno;
    lk_poller *p = NULL;
    int rc = create_backend(&p, b, wake_fd);
    if (rc == 0) p->ops->destroy(p);
    close(wake_fd);
    return rc;
}

int lk_poller_create_for_testing(lk_poller **out, lk_backend requested, int wake_fd, const char *override) {
    if (!is_backend(requested)) return -EINVAL;
    if (wake_fd < 0) return -EBADF;
    int rc = apply_override(&requested, override);
    if (rc != 0) return rc;
    rc = create_backend(out, requested, wake_fd);
    if (rc == 0) {
        LK_OWNER_INIT(&(*out)->loop);
        lk__owner_check(&(*out)->loop, "lk_poller_create");
    }
    return rc;
}

void lk_poller_destroy(lk_poller *p) {
    if (p == NULL) return;
    lk__owner_check(&p->loop, "lk_poller_destroy");
    p->ops->destroy(p);
}

lk_backend lk_poller_backend(const lk_poller *p) { return p->backend; }

int lk__poller_check_new_fd(const lk_poller *p, int fd) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return -EBADF;
    if (fd == p->wake_fd) return -EEXIST;
    struct stat st;
    if (fstat(fd, &st) != 0) return -EBADF;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return -EPERM;
    return 0;
}

int lk_poller_add(lk_poller *p, int fd, uint32_t events) {
    lk__owner_check(&p->loop, "lk_poller_add");
    if ((events & ~(uint32_t)LK_POLL_ALL) != 0) return -EINVAL;
    int rc = lk__poller_check_new_fd(p, fd);
    if (rc != 0) return rc;
    return p->ops->add(p, fd, events);
}

int lk_poller_modify(lk_poller *p, int fd, uint32_t events) {
    lk__owner_check(&p->loop, "lk_poller_modify");
    if ((events & ~(uint32_t)LK_POLL_ALL) != 0) return -EINVAL;
    if (fd < 0) return -EBADF;
    if (fd == p->wake_fd) return -EPERM;
    return p->ops->modify(p, fd, events);
}

int lk_poller_remove(lk_poller *p, int fd) {
    lk__owner_check(&p->loop, "lk_poller_remove");
    if (fd < 0 || fd == p->wake_fd) return -ENOENT;
    return p->ops->remove(p, fd);
}

int lk_poller_wait(lk_poller *p, int64_t timeout_ns, lk_poll_event *events, int max, bool *woken) {
    lk__owner_check(&p->loop, "lk_poller_wait");
    if (max < 0) return -EINVAL;
    bool w = false;
    if (lk__io_before_wait(p)) timeout_ns = 0; /* completions are waiting to be taken */
    int64_t now = timeout_ns > 0 ? lk_clock_now_ns() : 0;
    int64_t deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns; /* saturating */
    int rc;
    /* A signal ends the wait early with EINTR: wait again for what is left, so no wait ends before its
     * timeout unless something happened. */
    while ((rc = p->ops->wait(p, timeout_ns, events, max, &w)) == -EINTR && !w) {
        if (lk__io_before_wait(p)) { /* the interrupted wait queued completions: the caller takes them */
            rc = 0;
            break;
        }
        if (timeout_ns > 0 && (timeout_ns = deadline - lk_clock_now_ns()) <= 0) {
            rc = 0;
            break;
        }
    }
    if (rc == -EINTR) rc = 0; /* interrupted after the wake fd fired: report the wakeup */
    if (woken != NULL) *woken = w;
    return rc;
}
