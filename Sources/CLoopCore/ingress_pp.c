/*
 * ingress_pp.c — the LK_INGRESS_PER_PRODUCER kind: every producer thread pushes into a single-producer queue
 * of its own (spscq_impl.h), held in a producer record, one per (thread, ingress). The loop drains the
 * records it holds round robin and learns about the others when they announce themselves.
 *
 * Records. A thread finds its record for an ingress through thread-local state (the last one used, then a
 * small table); its first push to an ingress creates the record and links it into the ingress's registry.
 * While its SCHEDULED bit is set a record is in one of two places: the ingress's ready stack (a Treiber
 * stack that announcers push and the loop takes whole), or the loop's active list (a loop-private circular
 * list it drains round robin). With the bit clear the loop does not look at the record at all. The one
 * overlap: between pp_prepare_park (which clears the bit on held records) and pp_finish_park, a producer can
 * announce a record still in the active list; the loop pops nothing in that window, and pp_finish_park's
 * reclaim fails for it, so it leaves the active list.
 *
 * Scheduling protocol (spin/ingress.pml; P a producer, L the loop):
 *   P push:      write the slot, store its seq (release);  compiler barrier;  load flags:
 *                FAST      -> done;
 *                otherwise -> fence (seq_cst); load flags again:
 *                SCHEDULED -> done (L holds the record and will look at it before it sleeps);
 *                clear     -> announce: fetch_or SCHEDULED; if it was clear, push the record on the ready
 *                             stack and notify L (lk_wake_notify: fence, wake L if it sleeps).
 *   L unschedule (a record idle for PP_IDLE_LIMIT visits, or every held record in prepare_park):
 *                if FAST: fetch_and ~FAST, then the heavy barrier (barrier_impl.h: membarrier);
 *                fetch_and ~SCHEDULED (seq_cst);  fence (seq_cst);  re-check the record's queue;
 *                non-empty -> reclaim: fetch_or SCHEDULED; if it was clear keep the record, else P has
 *                announced it and it arrives through the ready stack.
 * No lost task, fenced push: P's fence and L's fence are ordered one way or the other. If P's comes first,
 * L's re-check sees the task; if L's comes first, P's load sees SCHEDULED clear and P announces (and the wake
 * handshake covers a sleeping L, lk_wake.h). Fast push: L sets FAST only on a record it holds, and clears it
 * and runs the heavy barrier before it unschedules; the barrier runs a full barrier in P's instruction
 * stream, so a push whose flags load came before it had its seq store visible when the barrier returned
 * (L's re-check sees it), and a push whose load came after it sees FAST clear and takes the fenced path.
 *
 * Cost. A fenced push pays a fence, which waits for its stores to leave the store buffer: with the loop
 * polling the producer's lines, a cross-core transfer per task. So L sets FAST on a record once it has
 * drained PP_FAST_AFTER tasks from it without giving it up (only where membarrier works): from then on a push
 * is a copy, a release store and a load of a line L does not write, and L pays one membarrier (a few
 * microseconds) when it next gives the record up, i.e. at most one per PP_FAST_AFTER tasks. L looks only at
 * records that have work or had it recently.
 *
 * Thread exit (pthread key destructor), under lk__pp_lock: fetch_or PRODUCER_GONE | SCHEDULED (release:
 * every task the thread pushed is visible to whoever acquires the bit); if SCHEDULED was clear, push the
 * record on the ready stack and notify L, as an announcement does (the record may still hold a task whose
 * reclaim this exit just made fail). L, finding a GONE record empty after acquiring that bit, unlinks and
 * frees it. A GONE record is never unscheduled: L checks the old value of every fetch_and ~SCHEDULED and
 * puts the bit back when the thread exited while L held the record (its exit then pushed nothing), so the
 * record stays where L looks until it has been drained.
 *
 * Ingress destruction, under lk__pp_lock: fetch_or LOOP_GONE on every registered record; a record whose
 * thread has exited is freed at once, the others by their thread (at exit, or when it next registers).
 * The lock orders exit against destruction, so an exiting thread never touches a freed ingress.
 */
#include "ingress_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "barrier_impl.h"
#include "ingress_pp_impl.h"


/* Visits that found a held record empty before the loop gives it up (unschedules it). */
#define PP_IDLE_LIMIT 64u
/* Tasks drained from a held record before the loop lets its pushes skip the fence. */
#define PP_FAST_AFTER 4096u

/* Benchmarks only (lk_ingress_fast_mode_for_testing): 0 keeps every record fenced. Stored before the
 * ingresses it affects are used and read by their loops (relaxed: a setting, handed over with them). */
static _Atomic int lk__pp_fast_mode_enabled = 1;





_Thread_local pp_thread lk__pp_self;

/* Orders registration, thread exit, reaping and ingress destruction. None of them is on the push path. */
static pthread_mutex_t lk__pp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t lk__pp_once = PTHREAD_ONCE_INIT;
static pthread_key_t lk__pp_key;

/* Last ingress id handed out. fetch_add relaxed: only uniqueness matters. */
static _Atomic uint64_t lk__pp_last_id = 0;

static void thread_exit(void *arg);
static void pp_setup(void) { pthread_key_create(&lk__pp_key, thread_exit); }

/* ---- records */

static lk_producer *record_create(pp_ingress *ing, bool thread_owned) {
    if (lk__fault_alloc(LK_FAULT_PRODUCER_ALLOC)) return NULL;
    lk_producer *p = aligned_alloc(LK_FALSE_SHARING_RANGE, sizeof(*p));
    if (p == NULL) return NULL;
    memset(p, 0, sizeof(*p));
    if (lk__spscq_init(&p->q) != 0) {
        free(p);
        return NULL;
    }
    atomic_init(&p->flags, 0);
    p->ingress = ing;
    p->ingress_id = ing->id;
    p->thread_owned = thread_owned;
    return p;
}

static void record_free(lk_producer *p) {
    lk__spscq_deinit(&p->q);
    free(p);
}

/* Under lk__pp_lock. */
static void registry_add(pp_ingress *ing, lk_producer *p) {
    p->reg_prev = NULL;
    p->reg_next = ing->registry;
    if (ing->registry != NULL) ing->registry->reg_prev = p;
    ing->registry = p;
    ing->registered++;
}

/* Under lk__pp_lock. */
static void registry_remove(pp_ingress *ing, lk_producer *p) {
    if (p->reg_prev != NULL) p->reg_prev->reg_next = p->reg_next;
    else ing->registry = p->reg_next;
    if (p->reg_next != NULL) p->reg_next->reg_prev = p->reg_prev;
    ing->registered--;
}

static void ready_push(pp_ingress *ing, lk_producer *p) {
    /* relaxed: the CAS below re-reads it. */
    lk_producer *head = atomic_load_explicit(&ing->ready, memory_order_relaxed);
    do {
        p->ready_next = head;
        /* release: publishes ready_next (and the record) to the loop's acquire exchange. A record is pushed
         * only by whoever set its SCHEDULED bit, so it is never on the stack twice; pushes never pop, so
         * a head that went A -> B -> A is still a correct successor (no ABA). */
    } while (!atomic_compare_exchange_weak_explicit(&ing->ready, &head, p, memory_order_release,
                                                    memory_order_relaxed));
}

/* ---- the producer side */

/* Producer: the record's SCHEDULED bit was clear. 1 when this call announced it (notify the loop). */
static int announce(pp_ingress *ing, lk_producer *p) {
    /* acq_rel: one winner among the announcer and a reclaiming loop; see `flags`. */
    uint32_t old = atomic_fetch_or_explicit(&p->flags, PP_SCHEDULED, memory_order_acq_rel);
    if (old & PP_SCHEDULED) return 0; /* the loop reclaimed the record: it drains it without a notification */
    ready_push(ing, p);
    return 1;
}

int lk__pp_after_publish(pp_ingress *ing, lk_producer *p) {
    int rc = 0;
    /* relaxed: as in lk__pp_push (the fast path checked FAST and notify_again; re-read for the slow path). */
    if (!(atomic_load_explicit(&p->flags, memory_order_relaxed) & PP_FAST)) {
        /* StoreLoad: orders the seq store before the flags load; pairs with the loop's fence after it
         * clears SCHEDULED (unschedule, prepare_park + lk_wake_prepare_park). spin/ingress.pml: NO_PUSH_FENCE */
        atomic_thread_fence(memory_order_seq_cst);
        /* relaxed: ordered by the fence above. */
        if (!(atomic_load_explicit(&p->flags, memory_order_relaxed) & PP_SCHEDULED)) rc = announce(ing, p);
    }
    if (rc == 1 || p->notify_again) {
        int w = lk__ingress_notify(&ing->base);
        p->notify_again = w < 0;
        return w < 0 ? LK_SUBMIT_WAKE_FAILED | -w : w;
    }
    return 0;
}

/* A push through `p` (the same steps as lk__pp_push_words): lk_ingress_submit's result. */
static int push_from(pp_ingress *ing, lk_producer *p, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    int rc = lk__spscq_push_words(&p->q, w0, w1, w2);
    if (rc != 0) return rc;
    atomic_signal_fence(memory_order_seq_cst); /* see lk__pp_push_words */
    return lk__pp_after_publish(ing, p);
}

/* Under lk__pp_lock: frees this thread's records whose ingress is gone. */
static void prune_locked(pp_thread *t) {
    size_t kept = 0;
    for (size_t i = 0; i < t->count; i++) {
        lk_producer *p = t->records[i];
        /* acquire: pairs with destroy's acq_rel fetch_or; the ingress no longer references p. */
        if (atomic_load_explicit(&p->flags, memory_order_acquire) & PP_LOOP_GONE) {
            if (t->last == p) t->last_id = 0, t->last = NULL;
            record_free(p);
        } else {
            t->records[kept++] = p;
        }
    }
    t->count = kept;
}

/* Creates and registers this thread's record for `ing`. NULL when out of memory. */
static lk_producer *register_self(pp_ingress *ing, pp_thread *t) {
    pthread_once(&lk__pp_once, pp_setup);
    pthread_mutex_lock(&lk__pp_lock);
    prune_locked(t);
    lk_producer *p = NULL;
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 4;
        lk_producer **grown = realloc(t->records, capacity * sizeof(*grown));
        if (grown == NULL) goto out;
        t->records = grown;
        t->capacity = capacity;
    }
    p = record_create(ing, true);
    if (p == NULL) goto out;
    registry_add(ing, p);
    t->records[t->count++] = p;
out:
    pthread_mutex_unlock(&lk__pp_lock);
    if (p != NULL && !t->key_set) {
        pthread_setspecific(lk__pp_key, t);
        t->key_set = true;
    }
    return p;
}

/* This thread's record for `ing`: the last one used, a known one, or a new one. */
static lk_producer *self_record(pp_ingress *ing) {
    pp_thread *t = &lk__pp_self;
    if (t->last_id == ing->id) return t->last;
    lk_producer *p = NULL;
    for (size_t i = 0; i < t->count && p == NULL; i++)
        if (t->records[i]->ingress_id == ing->id) p = t->records[i];
    if (p == NULL) p = register_self(ing, t);
    if (p != NULL) t->last_id = ing->id, t->last = p;
    return p;
}

/* Under lk__pp_lock: what the exit of p's thread does to p. */
static void exit_record_locked(lk_producer *p) {
    /* acq_rel: release publishes every task pushed through p to the loop's acquire of PRODUCER_GONE;
     * acquire pairs with destroy's LOOP_GONE. */
    uint32_t old = atomic_fetch_or_explicit(&p->flags, PP_PRODUCER_GONE | PP_SCHEDULED, memory_order_acq_rel);
    if (old & PP_LOOP_GONE) {
        record_free(p); /* the ingress is gone and left the record to its thread */
    } else if (!(old & PP_SCHEDULED)) {
        pp_ingress *ing = p->ingress;
        ready_push(ing, p); /* the loop drains and frees it; p is not touched after this */
        lk__ingress_notify(&ing->base); /* spin/ingress.pml: EXIT_WITHOUT_NOTIFY. A failure: nobody to tell */
    }
}

/* pthread key destructor: the thread's records are handed to their loops (or freed). */
static void thread_exit(void *arg) {
    pp_thread *t = arg;
    pthread_mutex_lock(&lk__pp_lock);
    for (size_t i = 0; i < t->count; i++) exit_record_locked(t->records[i]);
    pthread_mutex_unlock(&lk__pp_lock);
    free(t->records);
    memset(t, 0, sizeof(*t)); /* a later destructor that pushes registers afresh and re-arms the key */
}

/* ---- the loop side: the active list */

static void active_append(pp_ingress *ing, lk_producer *p) {
    /* relaxed: a debug check; the loop holds only records whose SCHEDULED bit it or an announcer set. */
    LK_ASSERT(atomic_load_explicit(&p->flags, memory_order_relaxed) & PP_SCHEDULED,
              "the loop holds a producer record that is not scheduled");
    p->idle = 0;
    p->drained = 0;
    p->fast = false; /* every path that gives a record up clears FAST first */
    p->unscheduled = false;
    if (ing->cursor == NULL) {
        p->active_next = p->active_prev = p;
        ing->cursor = p;
    } else { /* just before the cursor: visited last in the current rotation */
        lk_producer *c = ing->cursor;
        p->active_next = c;
        p->active_prev = c->active_prev;
        c->active_prev->active_next = p;
        c->active_prev = p;
    }
    ing->active_count++;
}

static void active_remove(pp_ingress *ing, lk_producer *p) {
    LK_ASSERT(ing->active_count > 0, "active_remove on an empty active list");
    if (--ing->active_count == 0) {
        ing->cursor = NULL;
        return;
    }
    p->active_prev->active_next = p->active_next;
    p->active_next->active_prev = p->active_prev;
    if (ing->cursor == p) ing->cursor = p->active_next;
}

/* Takes the whole ready stack into the active list, oldest announcement first. */
static void collect_ready(pp_ingress *ing) {
    /* relaxed peek: the common case is an empty stack. */
    if (atomic_load_explicit(&ing->ready, memory_order_relaxed) == NULL) return;
    /* acquire: pairs with ready_push's release CAS. */
    lk_producer *p = atomic_exchange_explicit(&ing->ready, NULL, memory_order_acquire);
    lk_producer *fifo = NULL;
    while (p != NULL) { /* reverse: the stack is newest first */
        lk_producer *next = p->ready_next;
        p->ready_next = fifo;
        fifo = p;
        p = next;
    }
    for (; fifo != NULL; fifo = fifo->ready_next) active_append(ing, fifo);
}

static bool producer_gone(lk_producer *p) {
    /* acquire: pairs with exit_record_locked's release; the exited thread's tasks are visible after it. */
    return (atomic_load_explicit(&p->flags, memory_order_acquire) & PP_PRODUCER_GONE) != 0;
}

/* Frees a drained record whose thread has exited and which is in no list. */
static void reap_unlinked(pp_ingress *ing, lk_producer *p) {
    pthread_mutex_lock(&lk__pp_lock); /* waits out the exiting thread's critical section */
    registry_remove(ing, p);
    pthread_mutex_unlock(&lk__pp_lock);
    record_free(p);
}

/* Unlinks and frees a drained record whose thread has exited. */
static void reap(pp_ingress *ing, lk_producer *p) {
    LK_ASSERT(lk__spscq_is_empty(&p->q), "a producer record is reaped before its queue is drained");
    active_remove(ing, p);
    reap_unlinked(ing, p);
}

/* Clears SCHEDULED on a held record (seq_cst: ordered before the caller's fence). True when its thread had
 * exited meanwhile: that exit found the bit set and pushed nothing, so the bit is put back and the loop
 * keeps the record (a GONE record is never unscheduled). */
static bool unschedule_unless_gone(lk_producer *p) {
    uint32_t old = atomic_fetch_and_explicit(&p->flags, ~PP_SCHEDULED, memory_order_seq_cst);
    if (!(old & PP_PRODUCER_GONE)) return false;
    /* relaxed: nobody else writes SCHEDULED of a GONE record; the loop itself reads it back. */
    atomic_fetch_or_explicit(&p->flags, PP_SCHEDULED, memory_order_relaxed);
    return true;
}

/* Sets SCHEDULED again for a record the loop unscheduled and then found non-empty. True when the loop owns
 * it again; false when its producer announced it first (it comes back through the ready stack). */
static bool reclaim(lk_producer *p) {
    /* acq_rel: see `flags`. spin/ingress.pml: RECLAIM_IGNORES_ANNOUNCE (this result ignored) */
    return (atomic_fetch_or_explicit(&p->flags, PP_SCHEDULED, memory_order_acq_rel) & PP_SCHEDULED) == 0;
}

/* Lets a held record's pushes skip the fence (see the file comment). */
static void set_fast(lk_producer *p) {
    /* relaxed: see `flags`. */
    atomic_fetch_or_explicit(&p->flags, PP_FAST, memory_order_relaxed);
    p->fast = true;
}

/* First half of giving up a fast record; the caller runs the heavy barrier before unscheduling it. */
static void clear_fast(lk_producer *p) {
    /* seq_cst: ordered before the heavy barrier that follows. */
    atomic_fetch_and_explicit(&p->flags, ~PP_FAST, memory_order_seq_cst);
    p->fast = false;
}

/* A held record that stayed empty: give it up, or free it if its thread has exited. */
static void retire(pp_ingress *ing, lk_producer *p) {
    if (producer_gone(p)) {
        if (lk__spscq_is_empty(&p->q)) reap(ing, p); /* else: its last tasks first */
        else p->idle = 0;
        return;
    }
    if (p->fast) {
        clear_fast(p);
        lk__barrier_heavy(); /* spin/ingress.pml: NO_HEAVY_BARRIER */
    }
    /* Then the fence: spin/ingress.pml: NO_RETIRE_FENCE. */
    if (unschedule_unless_gone(p)) { /* its thread exited just now: held after all */
        if (lk__spscq_is_empty(&p->q)) reap(ing, p);
        return;
    }
    active_remove(ing, p);
    /* StoreLoad: orders the clear before the re-check; pairs with the push's fence. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!lk__spscq_is_empty(&p->q) && reclaim(p)) active_append(ing, p); /* spin/ingress.pml: NO_RECHECK */
}

/* ---- ops */

static int pp_create(lk_ingress **out) {
    lk__barrier_is_asymmetric(); /* decides the barrier mode before any producer can push */
    pp_ingress *ing = aligned_alloc(LK_FALSE_SHARING_RANGE, sizeof(*ing));
    if (ing == NULL) return -ENOMEM;
    memset(ing, 0, sizeof(*ing));
    atomic_init(&ing->ready, NULL);
    ing->id = atomic_fetch_add_explicit(&lk__pp_last_id, 1, memory_order_relaxed) + 1; /* relaxed: unique */
    *out = &ing->base;
    return 0;
}

static void pp_destroy(lk_ingress *base) {
    pp_ingress *ing = (pp_ingress *)base;
    pthread_mutex_lock(&lk__pp_lock);
    for (lk_producer *p = ing->registry, *next; p != NULL; p = next) {
        next = p->reg_next;
        /* acq_rel: release hands p to its thread (prune_locked's acquire); acquire pairs with the exit. */
        uint32_t old = atomic_fetch_or_explicit(&p->flags, PP_LOOP_GONE, memory_order_acq_rel);
        if ((old & PP_PRODUCER_GONE) || !p->thread_owned) record_free(p);
    }
    pthread_mutex_unlock(&lk__pp_lock);
    free(ing);
}

int lk__pp_push_slow(pp_ingress *ing, uintptr_t w0, uintptr_t w1, uintptr_t w2) {
    lk_producer *p = self_record(ing);
    if (p == NULL) return -ENOMEM;
    return push_from(ing, p, w0, w1, w2);
}

static int pp_push(lk_ingress *base, const lk_task *task, int *wake_rc) {
    int rc = lk__pp_push_words((pp_ingress *)base, task->words[0], task->words[1], task->words[2]);
    return lk__ingress_split_result(rc, wake_rc);
}

/*
 * Round robin over the held records, starting where the last drain stopped: each visit takes up to an equal
 * share of `max`; another pass follows only when a visit filled its share (that record may have more). A
 * record that gives nothing for PP_IDLE_LIMIT visits is retired. Per-producer FIFO holds because each record
 * is FIFO and read in order.
 */
static size_t pp_pop_batch(lk_ingress *base, lk_task *out, size_t max, bool *busy) {
    pp_ingress *ing = (pp_ingress *)base;
    *busy = false;
    collect_ready(ing);
    if (ing->active_count == 0 || max == 0) return 0;
    size_t quantum = ing->active_count == 1 ? max : max / ing->active_count;
    if (quantum == 0) quantum = 1;
    size_t n = 0;
    size_t left_in_pass = ing->active_count;
    bool more = false;
    lk_producer *p = ing->cursor;
    while (n < max) {
        lk_producer *next = p->active_next;
        size_t want = max - n < quantum ? max - n : quantum;
        size_t got = lk__spscq_pop_batch(&p->q, out + n, want);
        n += got;
        if (got != 0) {
            p->idle = 0;
            more |= got == want;
            if (!p->fast && (p->drained += (uint32_t)got) >= PP_FAST_AFTER) {
                p->drained = PP_FAST_AFTER;
                /* relaxed: see lk__pp_fast_mode_enabled. */
                if (lk__barrier_is_asymmetric() && atomic_load_explicit(&lk__pp_fast_mode_enabled, memory_order_relaxed))
                    set_fast(p);
            }
        } else if (++p->idle >= PP_IDLE_LIMIT || producer_gone(p)) {
            retire(ing, p); /* may unlink p (next stays valid: only p leaves, or p comes back last) */
            if (ing->active_count == 0) return n;
        }
        p = next;
        if (--left_in_pass == 0) {
            if (!more) break;
            more = false;
            left_in_pass = ing->active_count;
        }
    }
    ing->cursor = p;
    return n;
}

static bool pp_is_empty(lk_ingress *base) {
    pp_ingress *ing = (pp_ingress *)base;
    /* acquire: pairs with ready_push; a record on the stack has (or had) work.
     * spin/ingress.pml: NO_READY_RECHECK */
    if (atomic_load_explicit(&ing->ready, memory_order_acquire) != NULL) return false;
    lk_producer *p = ing->cursor;
    for (size_t i = 0; i < ing->active_count; i++, p = p->active_next) {
        if (!lk__spscq_is_empty(&p->q)) return false;
    }
    return true;
}

/* Clears SCHEDULED on every held record except exited ones (they get no new tasks, and finish_park frees
 * them once drained). The caller's lk_wake_prepare_park fence orders these clears before its re-check. */
static void pp_prepare_park(lk_ingress *base) {
    pp_ingress *ing = (pp_ingress *)base;
    bool any_fast = false;
    lk_producer *p = ing->cursor;
    for (size_t i = 0; i < ing->active_count; i++, p = p->active_next) {
        if (p->fast && !producer_gone(p)) {
            clear_fast(p);
            any_fast = true;
        }
    }
    if (any_fast) lk__barrier_heavy(); /* one for all: spin/ingress.pml: NO_HEAVY_BARRIER */
    p = ing->cursor;
    for (size_t i = 0; i < ing->active_count; i++, p = p->active_next) {
        if (producer_gone(p)) continue;
        /* Ordered before the wake handshake's fence (seq_cst). spin/ingress.pml: the loop's park. */
        p->unscheduled = !unschedule_unless_gone(p);
    }
}

/* After the sleep (or the decision not to sleep): keeps the records that have work and that the loop
 * reclaims, frees drained exited ones, and lets the rest go (they announce themselves when they get work). */
static void pp_finish_park(lk_ingress *base) {
    pp_ingress *ing = (pp_ingress *)base;
    size_t count = ing->active_count;
    lk_producer *p = ing->cursor;
    for (size_t i = 0; i < count; i++) {
        lk_producer *next = p->active_next;
        if (!p->unscheduled) {
            if (producer_gone(p) && lk__spscq_is_empty(&p->q)) reap(ing, p);
        } else {
            p->unscheduled = false;
            if (lk__spscq_is_empty(&p->q) || !reclaim(p)) active_remove(ing, p);
        }
        p = next;
    }
}

static size_t pp_producer_count(lk_ingress *base) {
    pp_ingress *ing = (pp_ingress *)base;
    pthread_mutex_lock(&lk__pp_lock);
    size_t n = ing->registered;
    pthread_mutex_unlock(&lk__pp_lock);
    return n;
}

const lk_ingress_ops lk__ingress_pp_ops = {
    .name = "per-producer",
    .create = pp_create,
    .destroy = pp_destroy,
    .push = pp_push,
    .pop_batch = pp_pop_batch,
    .is_empty = pp_is_empty,
    .prepare_park = pp_prepare_park,
    .finish_park = pp_finish_park,
    .producer_count = pp_producer_count,
};

/* ---- tests */

lk_producer *lk_ingress_attach_producer_for_testing(lk_ingress *base) {
    if (base->ops != &lk__ingress_pp_ops) return NULL;
    pp_ingress *ing = (pp_ingress *)base;
    lk_producer *p = record_create(ing, false);
    if (p == NULL) return NULL;
    pthread_mutex_lock(&lk__pp_lock);
    registry_add(ing, p);
    pthread_mutex_unlock(&lk__pp_lock);
    return p;
}

int lk_ingress_push_from_for_testing(lk_ingress *base, lk_producer *p, const lk_task *task, int *wake_rc) {
    if (base->ops != &lk__ingress_pp_ops) return -EINVAL;
    int w = 0;
    int rc = lk__ingress_split_result(push_from((pp_ingress *)base, p, task->words[0], task->words[1], task->words[2]), &w);
    if (wake_rc != NULL) *wake_rc = w;
    return rc;
}

void lk_ingress_exit_producer_for_testing(lk_producer *p) {
    pthread_mutex_lock(&lk__pp_lock);
    exit_record_locked(p);
    pthread_mutex_unlock(&lk__pp_lock);
}

void lk_ingress_fast_mode_for_testing(bool enabled) {
    /* relaxed: see lk__pp_fast_mode_enabled. */
    atomic_store_explicit(&lk__pp_fast_mode_enabled, enabled ? 1 : 0, memory_order_relaxed);
}
