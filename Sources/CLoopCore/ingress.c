/*
 * ingress.c — the kind table and the dispatch of lk_ingress_* calls to a kind's ops (ingress_impl.h).
 */
#include "ingress_impl.h"

#include <errno.h>
#include <stdlib.h>

static const lk_ingress_ops *const lk__ingress_kinds[LK_INGRESS_KIND_COUNT] = {
    [LK_INGRESS_LOCK_FREE] = &lk__ingress_mpsc_ops,
    [LK_INGRESS_CHUNKED] = &lk__ingress_chunked_ops,
    [LK_INGRESS_PER_PRODUCER] = &lk__ingress_pp_ops,
};

const char *lk_ingress_kind_name(lk_ingress_kind kind) {
    return (unsigned)kind < LK_INGRESS_KIND_COUNT ? lk__ingress_kinds[kind]->name : NULL;
}

int lk_ingress_create(lk_ingress **out, lk_ingress_kind kind, lk_wake *wake) {
    if ((unsigned)kind >= LK_INGRESS_KIND_COUNT) return -EINVAL;
    const lk_ingress_ops *ops = lk__ingress_kinds[kind];
    lk_ingress *q = NULL;
    int rc = ops->create(&q);
    if (rc != 0) return rc;
    q->ops = ops;
    q->kind = kind;
    q->wake = wake;
    *out = q;
    return 0;
}

void lk_ingress_destroy(lk_ingress *q) {
    if (q != NULL) q->ops->destroy(q);
}

lk_ingress_kind lk_ingress_get_kind(const lk_ingress *q) { return q->kind; }

int lk__ingress_notify(lk_ingress *q) { return q->wake != NULL ? lk_wake_notify(q->wake) : 0; }

int lk_ingress_push(lk_ingress *q, const lk_task *task, int *wake_rc) {
    int w = 0;
    int rc = q->ops->push(q, task, &w);
    if (wake_rc != NULL) *wake_rc = w;
    return rc;
}

size_t lk_ingress_pop_batch(lk_ingress *q, lk_task *out, size_t max, bool *busy) {
    bool b = false;
    size_t n = q->ops->pop_batch(q, out, max, &b);
    if (busy != NULL) *busy = b;
    return n;
}

lk_pop_status lk_ingress_pop(lk_ingress *q, lk_task *out) {
    bool busy = false;
    if (q->ops->pop_batch(q, out, 1, &busy) == 1) return LK_POP_OK;
    return busy ? LK_POP_BUSY : LK_POP_EMPTY;
}

bool lk_ingress_is_empty(lk_ingress *q) { return q->ops->is_empty(q); }

void lk_ingress_prepare_park(lk_ingress *q) {
    if (q->ops->prepare_park != NULL) q->ops->prepare_park(q);
}

void lk_ingress_finish_park(lk_ingress *q) {
    if (q->ops->finish_park != NULL) q->ops->finish_park(q);
}

size_t lk_ingress_producer_count(lk_ingress *q) {
    return q->ops->producer_count != NULL ? q->ops->producer_count(q) : 0;
}
