/*
 * fuzz/ingress_pp.c — libFuzzer harness for the per-producer ingress (LK_INGRESS_PER_PRODUCER: ingress_pp.c
 * over the SPSC queues of spscq_impl.h), checked after every operation against a model of every producer's
 * FIFO and of how the loop schedules the producer records.
 *
 * One thread plays every producer and the loop. The producers are slot 0, the harness thread's own record
 * (lk_ingress_push: found through thread-local state, registered on its first push, left to the thread by
 * destroy), and up to MAX_RECS - 1 test handles (lk_ingress_attach_producer_for_testing). A task's sequence
 * number is (slot << 32) | n for the slot's n-th task, so every popped task names its producer.
 *
 * Input: byte 0 sets up the wake handshake, bits 0-1: 0, 1 one whose state is kept SLEEPING, so that every
 * notification shows in lk_wake_counters; 2 one kept RUNNING (notifications only inside a park); 3 none.
 * Bit 2: at the end, exit every other test handle after the final drain (destroy then frees exited records
 * still queued for reaping). Then operations, each an opcode byte b (operation b % 11, variant b / 11)
 * followed by its operands; "sel" is a u8 choosing among the producers still usable (not exited):
 *   0 attach a test handle (at most MAX_RECS - 1 over the run); NULL when an armed allocation fault hits
 *   1 push from sel: 1 + u8 % 16 tasks, odd variants 1 + u16 % 1024
 *   2 pop_batch with max, by variant % 3: u8 % 4 (so 0 and 1 are common), u8, or u16 % BATCH_MAX
 *   3 lk_ingress_pop
 *   4 pop_batch repeated: odd variants PP_IDLE_LIMIT - 2 + u8 % 4 calls (around the idle limit), even ones
 *     1 + u8; each with max = u8 % 9 (many empty calls in a row retire the held records)
 *   5 prepare_park: lk_ingress_prepare_park, then lk_wake_prepare_park; even variants first store RUNNING
 *     (the loop is running), odd ones keep the state, so a prepare refused in a non-RUNNING state takes the
 *     loop's guard path (finish_park at once). Until operation 6 the harness is inside the park: pops are
 *     replaced by the re-check (is_empty), while pushes, attaches, exits and faults go on
 *   6 finish_park: the re-check, lk_wake_finish_park, lk_ingress_finish_park; the state set by 10 is restored
 *   7 exit test handle sel (lk_ingress_exit_producer_for_testing; it notifies when it announces the record);
 *     it is not used again
 *   8 stream from sel: PP_FAST_AFTER + 16 * u8 tasks pushed in chunks of 1 + u8, each chunk followed by one
 *     pop_batch with max 1 + u8: enough for the loop to put the record in fast mode (and later give it up)
 *   9 fault: u8 % 3 picks LK_FAULT_SEGMENT_ALLOC, LK_FAULT_PRODUCER_ALLOC or LK_FAULT_EVENTFD_WRITE (EIO);
 *     u8 a gives skip a % 4 and count (a / 4) % 4 (0: forever); odd variants disarm the point instead.
 *     Armed points stay armed across operations until disarmed (all are disarmed before the final drain)
 *  10 wake state outside parks: u8 % 4 is AWAKE, RUNNING, SLEEPING or TERMINATING
 * Decoding stops early once WORK_BUDGET is spent. At the end an open park is finished, faults are disarmed,
 * everything is drained, one more pop_batch reaps the exited records, and the ingress is destroyed.
 *
 * The model. Per slot: the FIFO of its queued tasks, and the SPSC queue's positions and spare segments
 * (spscq.c: a push at a segment boundary takes a spare or allocates; a pop that enters a new segment hands
 * the old one back to a free spare slot, of LK_SPSCQ_SPARES). Per record, the scheduling state ingress_pp.c
 * keeps, mirrored from reading it: SCHEDULED, on the ready stack or in the active list (and where), idle
 * visits, tasks drained, FAST, unscheduled-by-prepare_park, exited; plus the ready stack's order and the
 * cursor. The fault points are mirrored as fault.c counts them (skip, count, injected). Expected results:
 *   push:          -ENOMEM and nothing queued exactly when an allocation it makes fails (the slot's first push
 *                  registers its record; a push at a segment boundary with no spare segment allocates one),
 *                  else 0. It announces (and notifies) exactly when SCHEDULED was clear: the record is not
 *                  held by the loop; after a notification that failed, the slot's next push notifies too
 *                  (announcing or not). wake_rc and lk_wake_counters follow lk_wake_notify: a request when the
 *                  state is SLEEPING, an eventfd write (1) unless one is pending since the last
 *                  lk_wake_prepare_park, -EIO when the injected write failures exhaust the retries;
 *   attach:        NULL exactly when the record or its first segment fails to allocate;
 *   pop_batch:     every task is the oldest of its producer (per-producer FIFO, payload intact, each task
 *                  once), in exactly the order the round robin of pp_pop_batch gives; busy never set;
 *                  fewer than max only when nothing at all is left queued; when max >= the producers with
 *                  tasks queued, each of them gets at least one (pass 1 gives every held record a share of
 *                  max / held >= 1, or 1 each while max < held, and all of them are held after the ready
 *                  stack is collected); a producer with tasks waits at most (held records - 1) calls in a
 *                  row since it last joined the active list (the cursor moves past at least one record per
 *                  call, and records join behind it);
 *   is_empty:      no task queued and the ready stack empty (an exited empty record on the stack reads as
 *                  non-empty until a pop_batch collects it: "true only when nothing is queued" holds);
 *   producer_count: registered records, never fewer than the unexited ones plus the exited ones with tasks;
 *                  after the final drain exactly the unexited ones (every exited record reaped);
 *   heavy barrier: through LK_FAULT_MEMBARRIER armed with one EINTR per operation (retried by barrier.c),
 *                  an operation ran a membarrier (one or more) exactly when it gave up a record in fast mode
 *                  (membarrier mode only: without it there is no fast mode);
 *   faults:        lk_fault_injected counts match the model's for every armed point.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "barrier_impl.h" /* lk__barrier_is_asymmetric: fast mode exists only with membarrier */
#include "fuzz.h"
#include "lk_fault.h"
#include "lk_ingress.h"
#include "lk_spscq.h"
#include "lk_wake.h"
#include "model_fifo.h"

#define MAX_RECS 16            /* slot 0 (this thread's record) and up to 15 test handles per run */
#define SELF 0
#define BATCH_MAX 1024u
#define MAX_QUEUED 8192u       /* pushes are skipped beyond this many tasks queued in all */
#define WORK_BUDGET (1u << 15) /* tasks pushed and popped, and calls made, per input */
#define PP_IDLE_LIMIT 64u      /* ingress_pp.c: empty visits before a held record is retired */
#define PP_FAST_AFTER 4096u    /* ingress_pp.c: tasks drained from a held record before FAST is set */
#define SPARES 2u              /* spscq_impl.h: LK_SPSCQ_SPARES */
#define SEG LK_SPSCQ_SEGMENT_SLOTS
#define WAKE_WRITE_ATTEMPTS 4  /* wake.c: LK_WAKE_WRITE_ATTEMPTS */
#define NONE (-1)

enum { F_SEGMENT, F_PRODUCER, F_EVENTFD, F_COUNT };
static const lk_fault_point fault_point[F_COUNT] = {LK_FAULT_SEGMENT_ALLOC, LK_FAULT_PRODUCER_ALLOC,
                                                    LK_FAULT_EVENTFD_WRITE};
static const int fault_error[F_COUNT] = {ENOMEM, ENOMEM, EIO};

/* fault.c's state of one point. */
typedef struct model_fault {
    uint32_t skip;
    uint32_t count; /* 0: disarmed; LK_FAULT_FOREVER: no limit */
    uint64_t injected;
} model_fault;

/* A producer slot: its tasks, its SPSC queue, and its record as the loop sees it. */
typedef struct mrec {
    lk_producer *handle; /* test handle (NULL for SELF); freed by the ingress once reaped */
    bool registered;     /* counted by lk_ingress_producer_count: created and not reaped */
    bool exited;         /* PRODUCER_GONE: never pushed to again */
    model_fifo tasks;    /* queued task sequence numbers */
    uint64_t pushed;     /* tasks queued so far (the SPSC queue's tail) */
    uint64_t popped;     /* tasks popped so far (its head) */
    unsigned spares;     /* segments handed back and not yet reused */
    /* ingress_pp.c's scheduling state. */
    bool sched;       /* SCHEDULED */
    bool on_ready;    /* on the ready stack */
    bool active;      /* in the loop's active list */
    bool unscheduled; /* SCHEDULED cleared by prepare_park, pending finish_park */
    bool fast;        /* FAST */
    bool notify_again; /* its last notification failed: the next push notifies too */
    uint32_t idle;
    uint32_t drained;
    int next, prev; /* active list links (slots) */
    /* Fairness: consecutive pop_batch calls (max >= 1) that found it with tasks and took none. */
    unsigned starved;
    unsigned starve_bound;
} mrec;

typedef struct harness {
    lk_ingress *g;
    lk_wake *w; /* NULL: no wake handshake */
    mrec recs[MAX_RECS];
    size_t nrecs; /* slots in use: SELF and the test handles attached so far */
    size_t queued; /* tasks in all model FIFOs */
    /* The loop's side of ingress_pp.c. */
    int ready[MAX_RECS]; /* the ready stack, oldest announcement first */
    size_t ready_len;
    int cursor;
    size_t active_count;
    bool asymmetric;   /* membarrier mode: fast mode in use */
    bool in_park;      /* between prepare_park and finish_park */
    unsigned barriers; /* heavy barriers the current operation should run */
    uint64_t barrier_base;
    /* The wake handshake. */
    lk_loop_state ambient; /* the state kept outside parks */
    lk_loop_state state;
    bool pending;
    uint64_t requests, syscalls;
    model_fault faults[F_COUNT];
    uint64_t injected_base[F_COUNT];
    size_t work; /* spent of WORK_BUDGET */
    size_t ops;
    /* pop_batch's buffers, here rather than on the stack (ASan poisons a large frame on every call). */
    lk_task out[BATCH_MAX];
    int expect[BATCH_MAX]; /* the slot of each task, as the model's round robin predicts */
} harness;

#include "driver.h" /* after struct harness: the main loop uses its counters */

/* ---- model: fault points, the wake handshake */

/* What fault.c's lk__fault_take does for `f`: the errno to inject, or 0. */
static int fault_take(harness *h, int f) {
    model_fault *m = &h->faults[f];
    if (m->count == 0) return 0;
    if (m->skip > 0) {
        m->skip--;
        return 0;
    }
    m->injected++;
    if (m->count != LK_FAULT_FOREVER) m->count--;
    return fault_error[f];
}

static void fault_set(harness *h, int f, uint32_t skip, uint32_t count) {
    lk_fault_arm(fault_point[f], fault_error[f], skip, count);
    h->faults[f].skip = skip;
    h->faults[f].count = count;
}

/* lk_wake_notify after an announcing push: its return value. */
static int model_notify(harness *h) {
    if (h->w == NULL || h->state != LK_STATE_SLEEPING) return 0;
    h->requests++;
    if (h->pending) return 0;
    h->pending = true;
    for (int failures = 0;;) {
        int e = fault_take(h, F_EVENTFD);
        if (e == 0) {
            h->syscalls++;
            return 1;
        }
        if (++failures == WAKE_WRITE_ATTEMPTS) {
            h->pending = false;
            return -e;
        }
    }
}

/* ---- model: the loop's scheduling (ingress_pp.c) */

static void ready_push(harness *h, int i) {
    FUZZ_CHECK(!h->recs[i].on_ready, "model: slot %d pushed on the ready stack twice", i);
    h->recs[i].on_ready = true;
    h->ready[h->ready_len++] = i;
}

/* active_append: just before the cursor, i.e. last in the current rotation. */
static void active_append(harness *h, int i) {
    mrec *r = &h->recs[i];
    FUZZ_CHECK(!r->active, "model: slot %d appended to the active list twice", i);
    r->active = true;
    r->idle = 0;
    r->drained = 0;
    r->fast = false;
    r->unscheduled = false;
    r->starved = 0;
    if (h->cursor == NONE) {
        r->next = r->prev = i;
        h->cursor = i;
    } else {
        mrec *c = &h->recs[h->cursor];
        r->next = h->cursor;
        r->prev = c->prev;
        h->recs[c->prev].next = i;
        c->prev = i;
    }
    h->active_count++;
}

static void active_remove(harness *h, int i) {
    mrec *r = &h->recs[i];
    FUZZ_CHECK(r->active, "model: slot %d removed from the active list it is not in", i);
    r->active = false;
    if (--h->active_count == 0) {
        h->cursor = NONE;
        return;
    }
    h->recs[r->prev].next = r->next;
    h->recs[r->next].prev = r->prev;
    if (h->cursor == i) h->cursor = r->next;
}

/* collect_ready: the whole stack, oldest announcement first. */
static void collect_ready(harness *h) {
    for (size_t k = 0; k < h->ready_len; k++) {
        h->recs[h->ready[k]].on_ready = false;
        active_append(h, h->ready[k]);
    }
    h->ready_len = 0;
}

/* reap: an exited record the loop found drained is unlinked and freed. */
static void reap(harness *h, int i) {
    active_remove(h, i);
    h->recs[i].registered = false;
    h->recs[i].handle = NULL;
}

/* retire, for a held record the visit found empty (single-threaded, the re-check finds it empty too). */
static void retire(harness *h, int i) {
    mrec *r = &h->recs[i];
    if (r->exited) {
        reap(h, i);
        return;
    }
    active_remove(h, i);
    if (r->fast) {
        r->fast = false;
        h->barriers++;
    }
    r->sched = false;
}

/* reclaim: sets SCHEDULED again; false when the producer announced the record first. */
static bool reclaim(mrec *r) {
    bool was = r->sched;
    r->sched = true;
    return !was;
}

/* The consumer side of the slot's queue taking one task: entering a new segment hands the old one back. */
static void queue_popped(mrec *r) {
    if (r->popped % SEG == 0 && r->popped != 0 && r->spares < SPARES) r->spares++;
    r->popped++;
}

/*
 * pp_pop_batch on the model: fills expect[] with the slot each task comes from and updates the scheduling
 * state. *held receives the number of held records after the ready stack is collected.
 */
static size_t model_pop_batch(harness *h, size_t max, int *expect, size_t *held) {
    collect_ready(h);
    *held = h->active_count;
    if (h->active_count == 0 || max == 0) return 0;
    size_t left[MAX_RECS];
    for (size_t i = 0; i < h->nrecs; i++) left[i] = h->recs[i].tasks.length;
    size_t quantum = h->active_count == 1 ? max : max / h->active_count;
    if (quantum == 0) quantum = 1;
    size_t n = 0;
    size_t left_in_pass = h->active_count;
    bool more = false;
    int p = h->cursor;
    while (n < max) {
        mrec *r = &h->recs[p];
        int next = r->next;
        size_t want = max - n < quantum ? max - n : quantum;
        size_t got = left[p] < want ? left[p] : want;
        for (size_t k = 0; k < got; k++) {
            expect[n++] = p;
            queue_popped(r);
        }
        left[p] -= got;
        if (got != 0) {
            r->idle = 0;
            more |= got == want;
            if (!r->fast && (r->drained += (uint32_t)got) >= PP_FAST_AFTER) {
                r->drained = PP_FAST_AFTER;
                if (h->asymmetric) r->fast = true;
            }
        } else if (++r->idle >= PP_IDLE_LIMIT || r->exited) {
            retire(h, p);
            if (h->active_count == 0) return n;
        }
        p = next;
        if (--left_in_pass == 0) {
            if (!more) break;
            more = false;
            left_in_pass = h->active_count;
        }
    }
    h->cursor = p;
    return n;
}

static void model_prepare_park(harness *h) {
    bool any_fast = false;
    int p = h->cursor;
    for (size_t k = 0; k < h->active_count; k++, p = h->recs[p].next) {
        if (h->recs[p].fast && !h->recs[p].exited) {
            h->recs[p].fast = false;
            any_fast = true;
        }
    }
    if (any_fast) h->barriers++;
    p = h->cursor;
    for (size_t k = 0; k < h->active_count; k++, p = h->recs[p].next) {
        if (h->recs[p].exited) continue;
        h->recs[p].sched = false;
        h->recs[p].unscheduled = true;
    }
}

static void model_finish_park(harness *h) {
    size_t count = h->active_count;
    int p = h->cursor;
    for (size_t k = 0; k < count; k++) {
        mrec *r = &h->recs[p];
        int next = r->next;
        bool empty = r->tasks.length == 0;
        if (!r->unscheduled) {
            if (r->exited && empty) reap(h, p);
        } else {
            r->unscheduled = false;
            if (empty || !reclaim(r)) active_remove(h, p);
        }
        p = next;
    }
}

/* ---- operations */

/* The usable slot number sel % count (SELF and the test handles not exited). */
static int pick(harness *h, uint8_t sel, bool handles_only) {
    int usable[MAX_RECS];
    size_t count = 0;
    for (size_t i = handles_only ? 1 : 0; i < h->nrecs; i++)
        if (!h->recs[i].exited) usable[count++] = (int)i;
    return count == 0 ? NONE : usable[sel % count];
}

static void attach(harness *h) {
    h->work++;
    if (h->nrecs == MAX_RECS) return;
    /* record_create: the record, then its queue's first segment. */
    bool fail = fault_take(h, F_PRODUCER) != 0 || fault_take(h, F_SEGMENT) != 0;
    lk_producer *p = lk_ingress_attach_producer_for_testing(h->g);
    FUZZ_CHECK((p == NULL) == fail, "attach returned %p, model says it %s", (void *)p, fail ? "fails" : "works");
    if (p == NULL) return;
    mrec *r = &h->recs[h->nrecs++];
    memset(r, 0, sizeof(*r));
    model_fifo_init(&r->tasks);
    r->handle = p;
    r->registered = true;
    r->next = r->prev = NONE;
}

/* One task from slot i: queued (0) or refused for memory (-ENOMEM, nothing queued); notifies as modelled. */
static void push_task(harness *h, int i) {
    h->work++;
    if (h->queued >= MAX_QUEUED) return;
    mrec *r = &h->recs[i];
    FUZZ_CHECK(!r->exited, "harness: push from exited slot %d", i);
    uint64_t seq = ((uint64_t)i << 32) | r->pushed;
    lk_task t = fuzz_task(seq);

    /* The allocations this push makes: the record (SELF's first push: record, then its first segment), and a
     * segment when the queue's tail is at a boundary and no spare is left. */
    bool registers = i == SELF && !r->registered;
    bool fail = registers && (fault_take(h, F_PRODUCER) != 0 || fault_take(h, F_SEGMENT) != 0);
    bool take_spare = false;
    if (!fail && r->pushed % SEG == 0 && r->pushed != 0) {
        if (r->spares > 0)
            take_spare = true;
        else
            fail = fault_take(h, F_SEGMENT) != 0;
    }

    int wake_rc = 12345;
    int rc = i == SELF ? lk_ingress_push(h->g, &t, &wake_rc)
                       : lk_ingress_push_from_for_testing(h->g, r->handle, &t, &wake_rc);
    if (fail) {
        FUZZ_CHECK(rc == -ENOMEM && wake_rc == 0, "push %llu from slot %d returned %d (wake_rc %d) while its "
                   "allocation failed", (unsigned long long)seq, i, rc, wake_rc);
        return;
    }
    FUZZ_CHECK(rc == 0, "push %llu from slot %d returned %d", (unsigned long long)seq, i, rc);
    if (registers) {
        r->registered = true;
        r->next = r->prev = NONE;
    }
    if (take_spare) r->spares--;
    r->pushed++;
    model_fifo_push(&r->tasks, seq, true);
    h->queued++;

    /* Announce exactly when the loop does not hold the record (FAST is only ever set with SCHEDULED). */
    bool announce = !r->sched;
    if (announce) {
        r->sched = true;
        ready_push(h, i);
    }
    /* A failed notification is repeated by the slot's next push, announced or not. */
    bool notifies = announce || r->notify_again;
    int want = notifies ? model_notify(h) : 0;
    if (notifies) r->notify_again = want < 0;
    FUZZ_CHECK(wake_rc == want, "push %llu from slot %d: wake_rc %d, model says %d (%s; state %d, pending %d)",
               (unsigned long long)seq, i, wake_rc, want,
               announce ? "announces" : notifies ? "held, notifies again after a failure" : "held, no notification",
               (int)h->state, h->pending);
}

static void check_is_empty(harness *h) {
    bool empty = lk_ingress_is_empty(h->g);
    /* The contract: true only when nothing is queued. */
    if (empty) FUZZ_CHECK(h->queued == 0, "is_empty with %zu tasks queued", h->queued);
    /* And exactly: a record on the ready stack (an exited one need not have tasks) reads as work. */
    bool want = h->queued == 0 && h->ready_len == 0;
    FUZZ_CHECK(empty == want, "is_empty = %d with %zu tasks queued, %zu records on the ready stack", empty,
               h->queued, h->ready_len);
}

/* One pop_batch (or lk_ingress_pop, i.e. max 1) checked against the model. */
static size_t pop_batch(harness *h, size_t max, bool via_pop) {
    h->work++;
    if (h->in_park) { /* the loop only re-checks between prepare_park and finish_park */
        check_is_empty(h);
        return 0;
    }
    size_t before[MAX_RECS];
    size_t with_tasks = 0;
    for (size_t i = 0; i < h->nrecs; i++) {
        before[i] = h->recs[i].tasks.length;
        if (before[i] > 0) with_tasks++;
    }
    int *expect = h->expect;
    size_t held = 0;
    size_t m = model_pop_batch(h, max, expect, &held);

    lk_task *out = h->out;
    size_t n;
    if (via_pop) {
        lk_pop_status s = lk_ingress_pop(h->g, &out[0]);
        FUZZ_CHECK(s == LK_POP_OK || s == LK_POP_EMPTY, "pop returned %d", (int)s);
        n = s == LK_POP_OK;
    } else {
        bool busy = true;
        n = lk_ingress_pop_batch(h->g, out, max, &busy);
        FUZZ_CHECK(!busy, "the per-producer ingress reported busy");
    }
    FUZZ_CHECK(n <= max, "pop_batch returned %zu for max %zu", n, max);
    h->work += n;

    /* Per producer FIFO, each task once, payload intact. */
    size_t got[MAX_RECS] = {0};
    for (size_t k = 0; k < n; k++) {
        uint64_t seq = fuzz_task_seq(&out[k]);
        size_t i = (size_t)(seq >> 32);
        FUZZ_CHECK(i < h->nrecs && h->recs[i].tasks.length > 0, "popped task %#llx of slot %zu, which has "
                   "nothing queued", (unsigned long long)seq, i);
        model_entry e = model_fifo_pop(&h->recs[i].tasks);
        FUZZ_CHECK(seq == e.seq, "slot %zu: popped task %llu, its oldest is %llu", i,
                   (unsigned long long)(seq & 0xffffffffu), (unsigned long long)(e.seq & 0xffffffffu));
        got[i]++;
        h->queued--;
    }
    /* Fewer than max only when everything is drained. */
    if (n < max) FUZZ_CHECK(h->queued == 0, "pop_batch returned %zu of max %zu with %zu tasks left", n, max,
                            h->queued);
    /* Fairness: with max >= the producers with tasks, each gets one; none waits more than held - 1 calls. */
    for (size_t i = 0; i < h->nrecs && max > 0; i++) {
        mrec *r = &h->recs[i];
        if (before[i] == 0 || got[i] > 0) {
            r->starved = 0;
            continue;
        }
        FUZZ_CHECK(max < with_tasks, "slot %zu had %zu tasks and got none from pop_batch(%zu), with %zu "
                   "producers holding tasks", i, before[i], max, with_tasks);
        if (r->starved++ == 0) r->starve_bound = held > 0 ? (unsigned)held - 1 : 0;
        FUZZ_CHECK(r->starved <= r->starve_bound, "slot %zu starved for %u pop_batch calls in a row (%zu held)",
                   i, r->starved, held);
    }
    /* Exactly the round robin of pp_pop_batch. */
    FUZZ_CHECK(n == m, "pop_batch(%zu) returned %zu tasks, the model's round robin %zu (%zu held)", max, n, m,
               held);
    for (size_t k = 0; k < n; k++) {
        int i = (int)(out[k].words[0] >> 32);
        FUZZ_CHECK(i == expect[k], "pop_batch(%zu): task %zu is from slot %d, the model's round robin says %d",
                   max, k, i, expect[k]);
    }
    return n;
}

static void park_begin(harness *h, bool store_running) {
    if (h->in_park) return;
    if (h->w != NULL && store_running) {
        lk_wake_state_store(h->w, LK_STATE_RUNNING);
        h->state = LK_STATE_RUNNING;
    }
    lk_ingress_prepare_park(h->g);
    model_prepare_park(h);
    if (h->w != NULL) {
        bool ok = lk_wake_prepare_park(h->w);
        h->pending = false; /* reset before the CAS, whatever the state */
        bool want = h->state == LK_STATE_RUNNING;
        FUZZ_CHECK(ok == want, "lk_wake_prepare_park returned %d in state %d", ok, (int)h->state);
        if (!ok) { /* the loop's guard path (EventLoop.park) */
            lk_ingress_finish_park(h->g);
            model_finish_park(h);
            return;
        }
        h->state = LK_STATE_SLEEPING;
    }
    h->in_park = true;
}

static void park_end(harness *h) {
    if (!h->in_park) return;
    check_is_empty(h); /* the re-check */
    if (h->w != NULL) {
        lk_wake_finish_park(h->w);
        if (h->state == LK_STATE_SLEEPING) h->state = LK_STATE_RUNNING;
    }
    lk_ingress_finish_park(h->g);
    model_finish_park(h);
    if (h->w != NULL) {
        lk_wake_state_store(h->w, h->ambient);
        h->state = h->ambient;
    }
    h->in_park = false;
}

static void exit_producer(harness *h, uint8_t sel) {
    h->work++;
    int i = pick(h, sel, true);
    if (i == NONE) return;
    mrec *r = &h->recs[i];
    lk_ingress_exit_producer_for_testing(r->handle);
    /* exit_record_locked: PRODUCER_GONE | SCHEDULED; onto the ready stack unless the loop has it already,
     * and then a notification as an announcement makes (its result goes nowhere). */
    r->exited = true;
    bool was_scheduled = r->sched;
    r->sched = true;
    if (!was_scheduled) {
        ready_push(h, i);
        (void)model_notify(h);
    }
}

/* Enough tasks through one record, popped as they come, for the loop to set FAST on it. */
static void stream(harness *h, uint8_t sel, unsigned total, unsigned chunk, unsigned popmax) {
    int i = pick(h, sel, false);
    if (h->in_park) {
        check_is_empty(h);
        return;
    }
    while (total > 0) {
        unsigned k = chunk < total ? chunk : total;
        total -= k;
        for (unsigned j = 0; j < k; j++) push_task(h, i);
        pop_batch(h, popmax, false);
    }
}

static void set_state(harness *h, lk_loop_state s) {
    h->ambient = s;
    if (h->w == NULL || h->in_park) return;
    lk_wake_state_store(h->w, s);
    h->state = s;
}

/* After every operation. */
static void check_state(harness *h) {
    check_is_empty(h);

    size_t registered = 0, floor = 0;
    size_t on_ready = 0, active = 0;
    for (size_t i = 0; i < h->nrecs; i++) {
        mrec *r = &h->recs[i];
        if (!r->registered) {
            FUZZ_CHECK(r->tasks.length == 0, "model: slot %zu unregistered with tasks", i);
            continue;
        }
        registered++;
        if (!r->exited || r->tasks.length > 0) floor++;
        /* No lost task: a record with tasks is held or on its way to the loop, or (inside a park) one the
         * loop gave up in prepare_park and decides on in finish_park. */
        if (r->tasks.length > 0)
            FUZZ_CHECK((r->sched && (r->active || r->on_ready)) || (h->in_park && r->unscheduled && r->active),
                       "model: slot %zu has %zu tasks and is not scheduled", i, r->tasks.length);
        FUZZ_CHECK(!r->fast || (r->sched && r->active), "model: slot %zu fast but not held", i);
        FUZZ_CHECK(!r->exited || r->sched, "model: exited slot %zu not scheduled", i);
        on_ready += r->on_ready;
        active += r->active;
    }
    FUZZ_CHECK(on_ready == h->ready_len && active == h->active_count, "model: lists disagree");

    size_t count = lk_ingress_producer_count(h->g);
    FUZZ_CHECK(count >= floor, "producer_count %zu, but %zu records are unexited or have tasks", count, floor);
    FUZZ_CHECK(count == registered, "producer_count %zu, the model says %zu", count, registered);

    if (h->w != NULL) {
        uint64_t requests, syscalls;
        lk_wake_counters(h->w, &requests, &syscalls);
        FUZZ_CHECK(requests == h->requests && syscalls == h->syscalls, "wake requests %llu, eventfd writes "
                   "%llu; the model says %llu, %llu", (unsigned long long)requests, (unsigned long long)syscalls,
                   (unsigned long long)h->requests, (unsigned long long)h->syscalls);
        FUZZ_CHECK(lk_wake_state_load(h->w) == h->state, "wake state %d, the model says %d",
                   (int)lk_wake_state_load(h->w), (int)h->state);
    }
    for (int f = 0; f < F_COUNT; f++) {
        uint64_t injected = lk_fault_injected(fault_point[f]) - h->injected_base[f];
        FUZZ_CHECK(injected == h->faults[f].injected, "fault point %d injected %llu failures, the model %llu",
                   (int)fault_point[f], (unsigned long long)injected, (unsigned long long)h->faults[f].injected);
    }
}

/* Heavy barriers are observed by failing the operation's first membarrier with EINTR (barrier.c retries). */
static void op_begin(harness *h) {
    h->barriers = 0;
    if (!h->asymmetric) return;
    h->barrier_base = lk_fault_injected(LK_FAULT_MEMBARRIER);
    lk_fault_arm(LK_FAULT_MEMBARRIER, EINTR, 0, 1);
}

static void op_end(harness *h) {
    if (!h->asymmetric) return;
    lk_fault_disarm(LK_FAULT_MEMBARRIER);
    uint64_t ran = lk_fault_injected(LK_FAULT_MEMBARRIER) - h->barrier_base;
    FUZZ_CHECK(ran == (h->barriers > 0 ? 1u : 0u), "operation %zu %s a heavy barrier, the model expects %u",
               h->ops, ran ? "ran" : "did not run", h->barriers);
}

/* ---- the input format: opcode b % 11 (see the top of this file) */

static void op_attach(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    attach(h);
}

static void op_push(harness *h, fuzz_input *in, unsigned variant) {
    int i = pick(h, fuzz_u8(in), false);
    unsigned k = (variant & 1u) ? 1u + fuzz_u16(in) % 1024u : 1u + fuzz_u8(in) % 16u;
    for (; k > 0; k--) push_task(h, i);
}

static void op_pop_batch(harness *h, fuzz_input *in, unsigned variant) {
    size_t max = variant % 3u == 0 ? fuzz_u8(in) % 4u
                 : variant % 3u == 1 ? fuzz_u8(in)
                                     : fuzz_u16(in) % BATCH_MAX;
    pop_batch(h, max, false);
}

static void op_pop(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    pop_batch(h, 1, true);
}

static void op_pop_batch_repeated(harness *h, fuzz_input *in, unsigned variant) {
    unsigned calls = (variant & 1u) ? PP_IDLE_LIMIT - 2u + fuzz_u8(in) % 4u : 1u + fuzz_u8(in);
    size_t max = fuzz_u8(in) % 9u;
    for (; calls > 0; calls--) pop_batch(h, max, false);
}

static void op_park_begin(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    park_begin(h, (variant & 1u) == 0);
}

static void op_park_end(harness *h, fuzz_input *in, unsigned variant) {
    (void)in;
    (void)variant;
    park_end(h);
}

static void op_exit_producer(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    exit_producer(h, fuzz_u8(in));
}

static void op_stream(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    uint8_t sel = fuzz_u8(in);
    unsigned total = PP_FAST_AFTER + 16u * fuzz_u8(in);
    unsigned chunk = 1u + fuzz_u8(in);
    unsigned popmax = 1u + fuzz_u8(in);
    stream(h, sel, total, chunk, popmax);
}

static void op_fault(harness *h, fuzz_input *in, unsigned variant) {
    int f = fuzz_u8(in) % 3;
    uint8_t a = fuzz_u8(in);
    uint32_t count = (a / 4u) % 4u;
    if (variant & 1u)
        fault_set(h, f, 0, 0);
    else
        fault_set(h, f, a % 4u, count == 0 ? LK_FAULT_FOREVER : count);
}

static void op_set_state(harness *h, fuzz_input *in, unsigned variant) {
    (void)variant;
    static const lk_loop_state states[4] = {LK_STATE_AWAKE, LK_STATE_RUNNING, LK_STATE_SLEEPING,
                                            LK_STATE_TERMINATING};
    set_state(h, states[fuzz_u8(in) % 4u]);
}

static const fuzz_op operations[] = {op_attach,     op_push,     op_pop_batch,     op_pop,   op_pop_batch_repeated,
                                     op_park_begin, op_park_end, op_exit_producer, op_stream, op_fault,
                                     op_set_state};

static size_t queued(const harness *h) { return h->queued; }

static void pop_a_batch(harness *h) { pop_batch(h, BATCH_MAX, false); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const fuzz_driver driver = {.ops = operations, .count = sizeof operations / sizeof operations[0],
                                       .budget = WORK_BUDGET, .op_begin = op_begin, .op_end = op_end,
                                       .check = check_state};
    fuzz_input in = {.data = data, .size = size, .at = 0};
    static harness h; /* large: kept off the stack; reset for every input (the buffers need no reset) */
    memset(&h, 0, offsetof(harness, out));
    h.cursor = NONE;
    h.asymmetric = lk__barrier_is_asymmetric();
    for (int f = 0; f < F_COUNT; f++) h.injected_base[f] = lk_fault_injected(fault_point[f]);

    uint8_t setup = fuzz_u8(&in);
    unsigned wake_mode = setup % 4u;
    if (wake_mode != 3) {
        int rc = lk_wake_create(&h.w);
        FUZZ_CHECK(rc == 0, "lk_wake_create returned %d", rc);
        h.ambient = wake_mode == 2 ? LK_STATE_RUNNING : LK_STATE_SLEEPING;
        lk_wake_state_store(h.w, h.ambient);
        h.state = h.ambient;
    }
    int rc = lk_ingress_create(&h.g, LK_INGRESS_PER_PRODUCER, h.w);
    FUZZ_CHECK(rc == 0, "create returned %d", rc);
    h.nrecs = 1; /* SELF, registered by its first push */
    model_fifo_init(&h.recs[SELF].tasks);
    h.recs[SELF].next = h.recs[SELF].prev = NONE;
    check_state(&h);

    fuzz_drive(&driver, &h, &in);

    /* The end: finish an open park, drain everything with memory available, reap the exited records. */
    op_begin(&h);
    park_end(&h);
    for (int f = 0; f < F_COUNT; f++) fault_set(&h, f, 0, 0);
    fuzz_drain(&h, queued, pop_a_batch);
    FUZZ_CHECK(pop_batch(&h, 1, false) == 0, "a task after the drain");
    op_end(&h);
    check_state(&h);
    FUZZ_CHECK(lk_ingress_is_empty(h.g), "not empty after the drain");
    size_t unexited = 0;
    for (size_t i = 0; i < h.nrecs; i++) {
        mrec *r = &h.recs[i];
        if (r->registered && !r->exited) unexited++;
        FUZZ_CHECK(r->pushed == r->popped && r->tasks.length == 0, "slot %zu: %llu pushed, %llu popped", i,
                   (unsigned long long)r->pushed, (unsigned long long)r->popped);
        FUZZ_CHECK(!r->exited || !r->registered, "exited slot %zu not reclaimed after the drain", i);
    }
    FUZZ_CHECK(lk_ingress_producer_count(h.g) == unexited, "producer_count %zu after the drain, %zu unexited",
               lk_ingress_producer_count(h.g), unexited);

    /* Exits after the drain leave empty exited records on the ready stack: destroy frees them. */
    if (setup & 4u) {
        for (size_t i = 1; i < h.nrecs; i += 2)
            if (!h.recs[i].exited) lk_ingress_exit_producer_for_testing(h.recs[i].handle);
    }
    lk_ingress_destroy(h.g);
    lk_wake_destroy(h.w);
    for (size_t i = 0; i < h.nrecs; i++) model_fifo_free(&h.recs[i].tasks);
    return 0;
}
