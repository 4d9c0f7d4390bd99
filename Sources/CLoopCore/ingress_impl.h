/*
 * ingress_impl.h — the contract between ingress.c (kind table, wakeups, dispatch) and the kinds
 * (ingress_mpsc.c, ingress_chunked.c, ingress_pp.c). Each kind embeds `struct lk_ingress` first and
 * points it at its ops. Adding a kind: one file with its ops, and one line in ingress.c's table.
 */
#ifndef LK_INGRESS_IMPL_H
#define LK_INGRESS_IMPL_H

#include "debug_impl.h"
#include "lk_ingress.h"

typedef struct lk_ingress_ops {
    const char *name;
    /* 0 or -ENOMEM. The caller sets the base fields. */
    int (*create)(lk_ingress **out);
    void (*destroy)(lk_ingress *q);
    /* 0: queued, and the loop notified when it needed it (*wake_rc: lk_wake_notify's result, 0 when none
     * was made); -ENOMEM: nothing queued. */
    int (*push)(lk_ingress *q, const lk_task *task, int *wake_rc);
    size_t (*pop_batch)(lk_ingress *q, lk_task *out, size_t max, bool *busy);
    bool (*is_empty)(lk_ingress *q);
    /* Optional (NULL: nothing to do). */
    void (*prepare_park)(lk_ingress *q);
    void (*finish_park)(lk_ingress *q);
    size_t (*producer_count)(lk_ingress *q);
    /* Optional: lk_ingress_consumer_hand_over for a queue that checks its consumer itself. */
    void (*consumer_hand_over)(lk_ingress *q);
} lk_ingress_ops;

struct lk_ingress {
    const lk_ingress_ops *ops;
    lk_ingress_kind kind;
    lk_wake *wake; /* NULL: nothing to notify */
    LK_OWNER_FIELD(consumer) /* debug builds: the loop (consumer) thread (debug_impl.h) */
};

/* lk_wake_notify on the queue's wake handshake; 0 when it has none. */
int lk__ingress_notify(lk_ingress *q);

/* lk_ingress_submit's result into lk_ingress_push's: 0 or the negative error, *wake_rc lk_wake_notify's. */
static inline int lk__ingress_split_result(int rc, int *wake_rc) {
    if (rc < 0) return rc;
    *wake_rc = rc >= LK_SUBMIT_WAKE_FAILED ? -(rc & ~LK_SUBMIT_WAKE_FAILED) : rc;
    return 0;
}

extern const lk_ingress_ops lk__ingress_mpsc_ops;
extern const lk_ingress_ops lk__ingress_chunked_ops;
extern const lk_ingress_ops lk__ingress_pp_ops;

#endif
