/*
 * ingress.c — the kind table and the dispatch of lk_ingress_* calls to a kind's ops (ingress_impl.h).
 */
#include "ingress_impl.h"

#include <errno.h>
#include <stdlib.h>

#include "gate_impl.h"
#include "ingress_pp_impl.h"

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
    LK_OWNER_INIT(&q->consumer);
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

/* A push of {w0, w1, w2} by kind, with lk_ingress_submit's result: the default kind's fast path is inlined
 * (the one call a submit makes, the task in registers throughout), the others go through their ops. */
__attribute__((noinline)) static int push_words_by_ops(lk_ingress *q, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    const lk_task task = {{w0, w1, w2}};
    int w = 0;
    int rc = q->ops->push(q, &task, &w);
    if (rc < 0) return rc;
    return w < 0 ? LK_SUBMIT_WAKE_FAILED | -w : w;
}

static inline int push_words(lk_ingress *q, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    if (__builtin_expect(q->kind == LK_INGRESS_PER_PRODUCER, 1)) return lk__pp_push_words((pp_ingress *)q, w0, w1, w2);
    return push_words_by_ops(q, w0, w1, w2);
}

int lk_ingress_push_words(lk_ingress *q, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    return push_words(q, w0, w1, w2);
}

/* Every submit the fast path below does not take: through the gate and push_words, as written. */
__attribute__((noinline)) static int submit_slow(lk_ingress *q, lk_gate *gate, uintptr_t w0, uintptr_t w1,
                                                 uintptr_t w2) {
    int rc = lk__gate_enter(gate);
    if (rc <= 0) return rc == 0 ? -ESHUTDOWN : rc;
    rc = push_words(q, w0, w1, w2);
    lk__gate_exit();
    return rc;
}

/* The end of a submit whose push needs more than the fast path (a fence, an announcement, a notification):
 * inside the gate, since the loop's final drain finds a task only once it is announced. */
__attribute__((noinline)) static int submit_finish(pp_ingress *ing, lk_producer *p) {
    int rc = lk__pp_after_publish(ing, p);
    lk__gate_exit();
    return rc;
}

int lk_ingress_submit(lk_ingress *q, lk_gate *gate, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    /* The common submit, written out so that it makes no call (every call below is a tail call): the
     * thread's gate record and producer record known, room in the segment, the record in fast mode. A
     * path without calls keeps no registers on the stack, whose stores would wait in the store buffer
     * behind the slot's. The steps are those of lk__gate_enter, lk__pp_push_words and lk__gate_exit. */
    lk_gate_record *r = lk__gate_self;
    if (__builtin_expect(r == NULL || q->kind != LK_INGRESS_PER_PRODUCER, 0)) return submit_slow(q, gate, w0, w1, w2);
    pp_ingress *ing = (pp_ingress *)q;
    pp_thread *t = &lk__pp_self;
    lk_producer *p = t->last;
    if (__builtin_expect(t->last_id != ing->id || lk__spscq_at_boundary(&p->q), 0))
        return submit_slow(q, gate, w0, w1, w2);
    if (!lk__gate_enter_with(gate, r)) return -ESHUTDOWN;
    lk__spscq_push_in_segment(&p->q, w0, w1, w2);
    atomic_signal_fence(memory_order_seq_cst); /* see lk__pp_push_words */
    /* relaxed: see lk__pp_push_words. */
    if (__builtin_expect((atomic_load_explicit(&p->flags, memory_order_relaxed) & PP_FAST) && !p->notify_again, 1)) {
        lk__gate_exit();
        return 0;
    }
    return submit_finish(ing, p);
}

size_t lk_ingress_pop_batch(lk_ingress *q, lk_task *out, size_t max, bool *busy) {
    lk__owner_check(&q->consumer, "lk_ingress_pop_batch");
    bool b = false;
    size_t n = q->ops->pop_batch(q, out, max, &b);
    if (busy != NULL) *busy = b;
    return n;
}

lk_pop_status lk_ingress_pop(lk_ingress *q, lk_task *out) {
    lk__owner_check(&q->consumer, "lk_ingress_pop");
    bool busy = false;
    if (q->ops->pop_batch(q, out, 1, &busy) == 1) return LK_POP_OK;
    return busy ? LK_POP_BUSY : LK_POP_EMPTY;
}

bool lk_ingress_is_empty(lk_ingress *q) {
    lk__owner_check(&q->consumer, "lk_ingress_is_empty");
    return q->ops->is_empty(q);
}

void lk_ingress_prepare_park(lk_ingress *q) {
    lk__owner_check(&q->consumer, "lk_ingress_prepare_park");
    if (q->ops->prepare_park != NULL) q->ops->prepare_park(q);
}

void lk_ingress_finish_park(lk_ingress *q) {
    lk__owner_check(&q->consumer, "lk_ingress_finish_park");
    if (q->ops->finish_park != NULL) q->ops->finish_park(q);
}

void lk_ingress_consumer_hand_over(lk_ingress *q) {
    lk__owner_release(&q->consumer);
    if (q->ops->consumer_hand_over != NULL) q->ops->consumer_hand_over(q);
}

size_t lk_ingress_producer_count(lk_ingress *q) {
    return q->ops->producer_count != NULL ? q->ops->producer_count(q) : 0;
}
