/*
 * ingress_mpsc.c — the LK_INGRESS_LOCK_FREE kind: lk_mpsc behind the ingress ops. Every push notifies the
 * loop (lk_wake_notify's fence and state load; spin/wake.pml is the argument).
 */
#include "ingress_impl.h"

#include <errno.h>
#include <stdlib.h>

#include "lk_mpsc.h"

typedef struct mpsc_ingress {
    lk_ingress base;
    lk_mpsc *q;
} mpsc_ingress;

static int mpsc_create(lk_ingress **out) {
    mpsc_ingress *g = calloc(1, sizeof(*g));
    if (g == NULL) return -ENOMEM;
    int rc = lk_mpsc_create(&g->q);
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = &g->base;
    return 0;
}

static void mpsc_destroy(lk_ingress *q) {
    lk_mpsc_destroy(((mpsc_ingress *)q)->q);
    free(q);
}

static int mpsc_push(lk_ingress *q, const lk_task *task, int *wake_rc) {
    int rc = lk_mpsc_push(((mpsc_ingress *)q)->q, task);
    if (rc < 0) return rc;
    *wake_rc = lk__ingress_notify(q);
    return 0;
}

static size_t mpsc_pop_batch(lk_ingress *q, lk_task *out, size_t max, bool *busy) {
    return lk_mpsc_pop_batch(((mpsc_ingress *)q)->q, out, max, busy);
}

static bool mpsc_is_empty(lk_ingress *q) { return lk_mpsc_is_empty(((mpsc_ingress *)q)->q); }

static void mpsc_consumer_hand_over(lk_ingress *q) { lk_mpsc_consumer_hand_over(((mpsc_ingress *)q)->q); }

const lk_ingress_ops lk__ingress_mpsc_ops = {
    .name = "lock-free",
    .create = mpsc_create,
    .destroy = mpsc_destroy,
    .push = mpsc_push,
    .pop_batch = mpsc_pop_batch,
    .is_empty = mpsc_is_empty,
    .consumer_hand_over = mpsc_consumer_hand_over,
};
