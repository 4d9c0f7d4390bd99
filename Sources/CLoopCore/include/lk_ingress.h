/*
 * lk_ingress.h — one interface over the two external-task queues, so the loop and the benchmarks can swap
 * the lock-free queue (lk_mpsc) for the mutex-guarded chunked one (lk_chunkq) without other changes.
 *
 * Threading: as for the underlying queue — push from any thread, everything else from the single consumer.
 */
#ifndef LK_INGRESS_H
#define LK_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include "lk_task.h"

typedef enum lk_ingress_kind {
    LK_INGRESS_LOCK_FREE = 0, /* lk_mpsc */
    LK_INGRESS_CHUNKED = 1,   /* lk_chunkq */
} lk_ingress_kind;

typedef struct lk_ingress lk_ingress;

/* Returns 0, -EINVAL for an unknown kind, or -ENOMEM. */
int lk_ingress_create(lk_ingress **out, lk_ingress_kind kind);
void lk_ingress_destroy(lk_ingress *q);
lk_ingress_kind lk_ingress_get_kind(const lk_ingress *q);
/* Returns 1 if the queue was empty before, 0 if not, -ENOMEM (nothing queued). */
int lk_ingress_push(lk_ingress *q, const lk_task *task);
lk_pop_status lk_ingress_pop(lk_ingress *q, lk_task *out);
/* Pops up to max; *busy (may be NULL) is set when a producer was mid-push (lock-free queue only). */
size_t lk_ingress_pop_batch(lk_ingress *q, lk_task *out, size_t max, bool *busy);
/* Consumer: true only when nothing is queued and no push is in progress. */
bool lk_ingress_is_empty(lk_ingress *q);

#endif
