/*
 * ingress.c — dispatch from the lk_ingress interface to lk_mpsc or lk_chunkq. A switch on a field that
 * never changes, so the branch predictor makes it free next to the queue operation itself.
 */
#include "lk_ingress.h"

#include <errno.h>
#include <stdlib.h>

#include "lk_chunkq.h"
#include "lk_mpsc.h"

struct lk_ingress {
    lk_ingress_kind kind;
    union {
        lk_mpsc *mpsc;
        lk_chunkq *chunked;
    } q;
};

int lk_ingress_create(lk_ingress **out, lk_ingress_kind kind) {
    if (kind != LK_INGRESS_LOCK_FREE && kind != LK_INGRESS_CHUNKED) return -EINVAL;
    lk_ingress *g = calloc(1, sizeof(*g));
    if (g == NULL) return -ENOMEM;
    g->kind = kind;
    int rc = kind == LK_INGRESS_LOCK_FREE ? lk_mpsc_create(&g->q.mpsc) : lk_chunkq_create(&g->q.chunked);
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void lk_ingress_destroy(lk_ingress *g) {
    if (g == NULL) return;
    if (g->kind == LK_INGRESS_LOCK_FREE)
        lk_mpsc_destroy(g->q.mpsc);
    else
        lk_chunkq_destroy(g->q.chunked);
    free(g);
}

lk_ingress_kind lk_ingress_get_kind(const lk_ingress *g) { return g->kind; }

int lk_ingress_push(lk_ingress *g, const lk_task *task) {
    return g->kind == LK_INGRESS_LOCK_FREE ? lk_mpsc_push(g->q.mpsc, task) : lk_chunkq_push(g->q.chunked, task);
}

lk_pop_status lk_ingress_pop(lk_ingress *g, lk_task *out) {
    return g->kind == LK_INGRESS_LOCK_FREE ? lk_mpsc_pop(g->q.mpsc, out) : lk_chunkq_pop(g->q.chunked, out);
}

size_t lk_ingress_pop_batch(lk_ingress *g, lk_task *out, size_t max, bool *busy) {
    if (g->kind == LK_INGRESS_LOCK_FREE) return lk_mpsc_pop_batch(g->q.mpsc, out, max, busy);
    if (busy != NULL) *busy = false;
    return lk_chunkq_pop_batch(g->q.chunked, out, max);
}

bool lk_ingress_is_empty(lk_ingress *g) {
    return g->kind == LK_INGRESS_LOCK_FREE ? lk_mpsc_is_empty(g->q.mpsc) : lk_chunkq_is_empty(g->q.chunked);
}
