/*
 * wake.pml — the loop's sleep/wake handshake (Sources/CLoopCore/wake.c, include/lk_wake.h) as the Swift
 * loop drives it (Sources/LoopKit/EventLoop+Tick.swift, EventLoop+Submit.swift). Run by `make verify`
 * (scripts/verify.sh); change this model and wake.c together.
 *
 * Processes and steps (C function / Swift function : the line modelled):
 *   Producer (NP of them, K tasks each) — EventLoop.submit from another thread:
 *     push_begin          lk_mpsc_push/link_begin  : atomic_exchange_explicit(&q->tail, n, ...)
 *                         the queue is non-empty from here on (pop answers BUSY, is_empty false)
 *     push_link           lk_mpsc_push/link_finish : atomic_store_explicit(&prev->next, n, release)
 *     (fence)             lk_wake_notify           : atomic_thread_fence(memory_order_seq_cst)
 *     read_state          lk_wake_notify           : atomic_load_explicit(&w->state, acquire) != SLEEPING
 *     claim               lk_wake_signal           : atomic_exchange_explicit(&w->pending, 1, acq_rel)
 *     write               lk_wake_signal           : write_signal(w->fd)  (sets `ev`)
 *   Loop — EventLoop.run's `while ... { tick() }`:
 *     run_one             tick/runExternalLane     : lk_ingress_pop_batch(ingress, ..., budget, nil) (budget 1)
 *     tick_poll           tick                     : if hasPendingWork() { ... pollIO(timeoutNanoseconds: 0) }
 *     spin_check          spin                     : if hasPendingWork() || state != RUNNING { return true }
 *     spin_poll           spin                     : if pollIO(timeoutNanoseconds: 0) > 0 { return true }
 *     reset               lk_wake_prepare_park     : atomic_store_explicit(&w->pending, 0, relaxed)
 *     announce            lk_wake_prepare_park     : CAS state RUNNING -> SLEEPING (seq_cst)
 *     (fence)             lk_wake_prepare_park     : atomic_thread_fence(memory_order_seq_cst)
 *     recheck             park                     : if hasPendingWork() { lk_wake_finish_park(wake); ... }
 *     block               park/waitForIO           : lk_poller_wait(poller, timeout, ...)  (-1: no timer)
 *     finish              lk_wake_finish_park      : CAS state SLEEPING -> RUNNING
 *
 * The eventfd. Pollers watch it edge-triggered (epoll) or with a multishot poll (io_uring) and never read it,
 * so what matters is whether a write has happened that no poll has reported yet: the bit `ev`. Any poll
 * reports and clears it: the blocking one in park, and the NON-blocking ones (tick's pollIO(0) while work
 * remains, spin's periodic pollIO(0)). Those can consume a write while the loop is RUNNING, which is why
 * prepare_park must reset `pending` at the start of every sleep. The blocking poll returns only on `ev`:
 * with no timer and no I/O that is all that ends it, and a model that let it return for other reasons would
 * hide every lost wakeup. Both non-blocking polls are nondeterministic (registeredCount may be 0; the spin
 * polls only every 5 µs), as is whether the loop spins before parking (spinBudget may be 0).
 *
 * The queue is the lock-free ingress (Vyukov MPSC): tasks in tail-exchange order, each linked or not. The
 * oldest is popped once it is linked and so is its successor (or it has none); an exchanged but unlinked
 * push makes the queue non-empty (BUSY), so hasPendingWork() is `qhead != qtail`. Budget 1 per tick makes
 * the "work remains, poll without blocking" path reachable. The other lanes behave the same for this
 * protocol and are folded into this one queue.
 *
 * Weak memory. Promela interleaves, i.e. it is sequentially consistent, so a fence could be deleted without
 * consequence. Each seq_cst fence is therefore modelled by what it forbids: a later load being satisfied
 * before an earlier store is visible to the other threads (store->load reordering, allowed by C11 for
 * these non-seq_cst accesses and by x86-TSO for the link store and the chunked queue's unlock). With a fence
 * the steps run in program order. Without it (mutants NO_PRODUCER_FENCE, NO_LOOP_FENCE) the thread may
 * perform the load first and make the store visible afterwards. For one store followed by the loads in
 * question this is exactly what a store buffer flushed at an arbitrary later point allows. The
 * acquire/release pairs (state CAS releasing the pending reset; the link store releasing the payload) need
 * no model: interleaving already gives them.
 *
 * Properties. Safety (-DSAFETY): each task runs at most once (assertion), and no invalid end state: the loop
 * may stop only when every task has run (the `nrun == NT` exit in block is a model-only escape that keeps
 * finished runs from counting as deadlocks); a loop blocked with a task queued and no write coming is the
 * lost wakeup and shows up as an invalid end state. Liveness (-DLIVENESS, `pan -a -f`): under weak fairness
 * every task eventually runs (all tasks are accepted in this model, so that is "no accepted task waits
 * forever").
 *
 * Mutants (each must produce a counterexample):
 *   NO_PRODUCER_FENCE     notify's fence removed: the state read may precede the publish.
 *   NO_LOOP_FENCE         prepare_park's fence removed: the re-check may precede the SLEEPING store.
 *   NO_RECHECK            park blocks without re-checking the queues.
 *   RESET_IN_FINISH_PARK  pending is reset in finish_park instead of prepare_park: a write claimed after the
 *                         reset, consumed by a non-blocking poll, leaves a stale 1 that suppresses the next
 *                         sleep's write.
 *   NO_PENDING_RESET      pending is never reset: only the first sleep can be woken.
 * Not modelled: shutdown (EventLoop+Shutdown.swift and spin/gate.pml: TERMINATING makes prepare_park fail
 * and producers skip the write), timers and I/O (they only end a sleep early), and failed eventfd writes.
 */

#ifndef NP
#define NP 3                    /* producers */
#endif
#ifndef K
#define K 1                     /* tasks per producer */
#endif
#define NT (NP * K)             /* task ids 0 .. NT-1: producer p's k-th task is p*K + k */

#define RUNNING  1
#define SLEEPING 2

byte state = RUNNING;           /* w->state; run() has already moved it AWAKE -> RUNNING */
bit pending = 0;                /* w->pending */
bit ev = 0;                     /* an eventfd write no poll has reported yet */

byte q[NT + 1];                 /* ingress: task ids in tail-exchange order */
byte qtail = 0;                 /* exchanges so far */
byte qhead = 0;                 /* consumer position */
bit linked[NT];
bit ran[NT];
byte nrun = 0;

/* lk_mpsc_pop can hand out the oldest task: it is linked, and so is its successor if it has one. */
#define POPPABLE (qhead < qtail && linked[q[qhead]] && (qhead + 1 == qtail || linked[q[qhead + 1]]))
/* hasPendingWork(): lk_mpsc_is_empty is false from the exchange on (BUSY counts as not empty). */
#define PENDING  (qhead != qtail)

/* pollIO(timeoutNanoseconds: 0), when it happens: reports (and so consumes) a pending eventfd write. */
#define TICK_POLL 1
#define SPIN_POLL 2
inline poll_nonblocking(where) {
    if
    :: d_step {
           ev -> ev = 0;
           if
           :: where == TICK_POLL -> printf("loop: tick's pollIO(0) consumes the eventfd write\n")
           :: where == SPIN_POLL -> printf("loop: spin's pollIO(0) consumes the eventfd write\n")
           fi
       }
    :: d_step { !ev -> skip }
    :: skip                                     /* no poll: registeredCount == 0 / not yet 5 us */
    fi
}

inline push(t) {
    d_step { q[qtail] = t; qtail++; printf("P%d: push t%d (tail exchanged; queue non-empty)\n", p, t) };
    d_step { linked[t] = 1; printf("P%d: link t%d\n", p, t) }
}

inline read_state(early) {
    d_step {
        s = (state == SLEEPING);
        if
        :: s && !early -> printf("P%d: reads state SLEEPING\n", p)
        :: !s && !early -> printf("P%d: reads state RUNNING\n", p)
        :: s && early -> printf("P%d: reads state SLEEPING (before its push is visible)\n", p)
        :: !s && early -> printf("P%d: reads state RUNNING (before its push is visible)\n", p)
        fi
    }
}

active proctype Loop() {
    byte t;
    bit work;

tick:
    /* runExternalLane with budget 1 */
    atomic {
        if
        :: POPPABLE -> t = q[qhead]; qhead++;
                       assert(!ran[t]); ran[t] = 1; nrun++;
                       printf("loop: runs t%d\n", t)
        :: else -> skip
        fi
    }
    /* tick step 5 */
    if
    :: PENDING -> poll_nonblocking(TICK_POLL); goto tick
    :: !PENDING -> skip
    fi;

    /* idle(): spin (stays RUNNING), then park. Or park at once (spinBudget 0). */
    if
    :: skip ->
        if :: PENDING -> goto tick :: !PENDING -> skip fi;
        poll_nonblocking(SPIN_POLL);
        if :: PENDING -> goto tick :: !PENDING -> skip fi
    :: skip
    fi;

    /* park(): lk_wake_prepare_park */
#if !defined(RESET_IN_FINISH_PARK) && !defined(NO_PENDING_RESET)
    d_step { pending = 0; printf("loop: prepare_park resets pending\n") }
#endif
#if defined(NO_RECHECK)
    d_step { state = SLEEPING; printf("loop: SLEEPING; blocks without re-checking the queues\n") }
    work = 0;
#elif defined(NO_LOOP_FENCE)
    if
    :: d_step { state = SLEEPING; printf("loop: SLEEPING\n") };
       d_step { work = PENDING; printf("loop: re-check finds %d queued\n", qtail - qhead) }
    :: d_step { work = PENDING;
                printf("loop: re-check finds %d queued (before SLEEPING is visible)\n", qtail - qhead) };
       d_step { state = SLEEPING; printf("loop: SLEEPING becomes visible\n") }
    fi;
#else
    d_step { state = SLEEPING; printf("loop: SLEEPING\n") };
    /* seq_cst fence */
    d_step { work = PENDING; printf("loop: re-check finds %d queued\n", qtail - qhead) };
#endif
    if
    :: work -> skip                              /* do not block */
    :: !work ->
        if
        :: atomic { ev -> ev = 0; printf("loop: woken by the eventfd\n") }
        :: atomic { nrun == NT -> goto done }    /* model only: every task ran, stop here */
        fi
    fi;
    /* lk_wake_finish_park */
    d_step { state = RUNNING; printf("loop: finish_park: RUNNING\n") };
#ifdef RESET_IN_FINISH_PARK
    d_step { pending = 0; printf("loop: finish_park resets pending\n") };
#endif
    goto tick;
done:
    skip
}

active [NP] proctype Producer() {
    byte p = _pid - 1;                           /* the Loop is pid 0 */
    byte k = 0;
    byte t;
    bit s;
    bit old;

    do
    :: k < K ->
        t = p * K + k;
#ifdef NO_PRODUCER_FENCE
        if
        :: push(t); read_state(0)
        :: read_state(1); push(t)                /* the load is satisfied before the publish is visible */
        fi;
#else
        push(t);
        /* lk_wake_notify: seq_cst fence */
        read_state(0);
#endif
        if
        :: s ->
            d_step { old = pending; pending = 1; printf("P%d: exchanges pending: was %d\n", p, old) };
            if
            :: old == 0 -> d_step { ev = 1; printf("P%d: writes the eventfd\n", p) }
            :: old != 0 -> skip
            fi
        :: !s -> skip
        fi;
        k++
    :: k == K -> break
    od
}

#ifdef LIVENESS
ltl every_task_runs { <> (nrun == NT) }
#endif
