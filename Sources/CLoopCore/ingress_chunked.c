/*
 * ingress_chunked.c — the LK_INGRESS_CHUNKED kind: lk_chunkq behind the ingress ops. Every push notifies
 * the loop, as for the lock-free kind.
 */
#include "ingress_impl.h"

#include <errno.h>
#include <stdlib.h>

#include "lk_chunkq.h"

typedef struct chunked_ingress {
    lk_ingress base;
    lk_chunkq *q;
} chunked_ingress;

static int chunked_create(lk_ingress **out) {
    chunked_ingress *g = calloc(1, sizeof(*g));
    if (g == NULL) return -ENOMEM;
    int rc = lk_chunkq_create(&g->q);
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = &g->base;
    return 0;
}

static void chunked_destroy(lk_ingress *q) {
    lk_chunkq_destroy(((chunked_ingress *)q)->q);
    free(q);
}

static int chunked_push(lk_ingress *q, const lk_task *task, int *wake_rc) {
    int rc = lk_chunkq_push(((chunked_ingress *)q)->q, task);
    if (rc < 0) return rc;
    *wake_rc = lk__ingress_notify(q);
    return 0;
}

static size_t chunked_pop_batch(lk_ingress *q, lk_task *out, size_t max, bool *busy) {
    *busy = false;
    return lk_chunkq_pop_batch(((chunked_ingress *)q)->q, out, max);
}

static bool chunked_is_empty(lk_ingress *q) { return lk_chunkq_is_empty(((chunked_ingress *)q)->q); }

static void chunked_consumer_hand_over(lk_ingress *q) { lk_chunkq_consumer_hand_over(((chunked_ingress *)q)->q); }

const lk_ingress_ops lk__ingress_chunked_ops = {
    .name = "chunked",
    .create = chunked_create,
    .destroy = chunked_destroy,
    .push = chunked_push,
    .pop_batch = chunked_pop_batch,
    .is_empty = chunked_is_empty,
    .consumer_hand_over = chunked_consumer_hand_over,
};
