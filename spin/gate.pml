/*
 * gate.pml — submissions racing a graceful shutdown through the loop's final drain: the admission gate
 * (Sources/CLoopCore/gate.c, include/lk_gate.h), EventLoop.admit (EventLoop+Submit.swift) and
 * EventLoop.finish / drainUntilEmpty / discardQueued (EventLoop+Shutdown.swift). Run by `make verify`
 * (scripts/verify.sh); change this model and gate.c together.
 *
 * Processes and steps (C function / Swift function : the line modelled):
 *   Submitter (NP threads; thread 0 submits K0 tasks, the others K each) — EventLoop.submit from another
 *   thread, i.e. admit():
 *     enter               lk_gate_enter    : atomic_store_explicit(&r->inside, 1, relaxed)
 *     (barrier S)         lk_gate_enter    : atomic_thread_fence(seq_cst) / atomic_signal_fence + membarrier
 *     check               lk_gate_enter    : if (atomic_load_explicit(&g->closed, relaxed) != 0)
 *     reject              lk_gate_enter    : atomic_store_explicit(&r->inside, 0, relaxed); return false
 *                                            (admit throws .terminated: nothing queued)
 *     push_begin          lk_mpsc_push/link_begin  : atomic_exchange_explicit(&q->tail, n, acq_rel)  (BUSY)
 *     push_link           lk_mpsc_push/link_finish : atomic_store_explicit(&prev->next, n, release)
 *     exit                lk_gate_exit     : atomic_store_explicit(&lk__gate_self->inside, 0, release)
 *     (lk_wake_notify follows; the state is TERMINATING, so it writes nothing: not modelled.)
 *   Loop — finish() on the loop thread, the state already TERMINATING:
 *     drain #1            finish           : drainUntilEmpty()            (closeRequested false: graceful)
 *     close               lk_gate_close    : atomic_store_explicit(&g->closed, 1, relaxed)
 *     (barrier C)         lk_gate_close    : membarrier(PRIVATE_EXPEDITED) or atomic_thread_fence(seq_cst)
 *     wait                lk_gate_close    : while (atomic_load_explicit(&r->inside, acquire) != 0) pause
 *     drain #2            finish           : drainUntilEmpty()
 *     close local         finish           : localWorkClosed = true
 *     discard             finish           : discardQueued() -> releaseAll (pops until EMPTY, waits on BUSY)
 *     terminated          finish           : lk_wake_state_store(wake, LK_STATE_TERMINATED)
 *   drainUntilEmpty: runInternalLane + runExternalLane + drainMicrotasks, one task per model step; when
 *   nothing ran: return if !hasPendingWork(), else pause and retry (a push in flight is BUSY, i.e. pending).
 *   The pause-and-retry loop is modelled as a wait for the push to land (equal under weak fairness).
 *   A task running on the loop may itself submit (EventLoop.submit with inEventLoop): localExternal.append
 *   unless localWorkClosed (then it throws .terminated); at most NLOCAL such submissions in a run.
 *
 * Records: gate.c keeps one record per thread on a global list; each Submitter here owns inside[p]. A record
 * pushed onto the list concurrently with the closer's scan is covered by the same barrier pair (the push is
 * a store before barrier S, the list-head load a load after barrier C), so a fixed set of records loses no
 * generality.
 *
 * Weak memory. Promela interleaves, i.e. it is sequentially consistent, so removing a barrier would change
 * nothing. Each barrier is modelled by what it forbids: the later load being satisfied before the earlier
 * store is visible to the other thread (store->load reordering; C11 allows it for these relaxed accesses and
 * x86-TSO for plain stores). With the barrier the steps run in program order. Without it:
 *   NO_BARRIER_S  the submitter's load of `closed` may happen before its `inside = 1` is visible.
 *   NO_BARRIER_C  the closer's `closed = 1` sits in a store buffer that drains at an arbitrary point of its
 *                 scan of the records (at the latest after it), so the scan's loads may precede it.
 * Membarrier mode (barrier S a compiler barrier only, barrier C the membarrier call) gives the same
 * guarantee: the system call runs a full barrier on every CPU running a submitter, so either that barrier
 * precedes the submitter's load (which then sees closed = 1, stored before the call) or the submitter's
 * `inside = 1` (program-ordered before the load) was visible before the call returned and the scan sees it.
 * The release/acquire pairs (exit -> scan, link -> pop) need no model: interleaving gives them.
 *
 * Properties. Safety (-DSAFETY): no task runs twice or after TERMINATED (assertions at run time); every
 * accepted task runs: discardQueued releases none (`released == 0`), none is pushed after TERMINATED, and
 * once the loop has terminated and every submitter has returned, nrun == nacc (model-only epilogue); no
 * invalid end state. Liveness (-DLIVENESS, `pan -a -f`): under weak fairness the
 * loop eventually terminates with every accepted task run: no accepted task waits forever, and the loop
 * never waits forever (for a submitter inside the gate or a push in flight).
 *
 * Mutants (each must produce a counterexample):
 *   NO_BARRIER_S      see above. This is also what a closer falling back to its own fence would leave when
 *                     the membarrier call fails in membarrier mode: submitters had only a compiler barrier.
 *                     Hence lk_gate_close retries a transient membarrier failure and stops the process on
 *                     a permanent one; it never falls back.
 *   NO_BARRIER_C      see above.
 *   NO_CLOSER_WAIT    lk_gate_close returns without waiting for inside == 0.
 *   NO_SECOND_DRAIN   finish() skips the drain after lk_gate_close.
 * Check that must pass:
 *   DRAIN_IGNORES_BUSY  drainUntilEmpty treats a push in flight (BUSY) as empty. Expected to verify: in a
 *                     graceful shutdown the gate's wait, not the drain's BUSY handling, catches pushes in
 *                     flight (every foreign push is inside the gate; after the wait none is in flight).
 */

#ifndef NP
#define NP 3                    /* submitting threads */
#endif
#ifndef K0
#define K0 2                    /* submissions by thread 0 */
#endif
#ifndef K
#define K 1                     /* submissions by each other thread */
#endif
#ifndef NLOCAL
#define NLOCAL 1                /* submissions from tasks running on the loop thread */
#endif
#define NF (K0 + (NP - 1) * K)  /* foreign task ids 0 .. NF-1 */
#define KOF(p) (p == 0 -> K0 : K)                           /* submissions by thread p */
#define TID(p, k) (p == 0 -> k : K0 + (p - 1) * K + k)       /* thread p's k-th task */
#define NT (NF + NLOCAL)        /* local task ids NF .. NT-1 */

bit closed = 0;                 /* g->closed (as the other threads see it) */
bit inside[NP];                 /* each thread's record: r->inside (as the closer sees it) */

byte q[NF + 1];                 /* foreign ingress (MPSC): task ids in tail-exchange order */
byte qtail = 0;
byte qhead = 0;
bit linked[NF];

byte lhead = NF;                /* localExternal: local ids lhead .. ltail-1 */
byte ltail = NF;
bit localWorkClosed = 0;

bit terminated = 0;             /* state == TERMINATED */
bit ran[NT];
byte nacc = 0;                  /* submissions that succeeded */
byte nrun = 0;
byte ndone = 0;                 /* submitters that have returned */
byte released = 0;              /* accepted tasks that discardQueued released unrun */

/* lk_mpsc_pop can hand out the oldest task: it is linked, and so is its successor if it has one. A task
 * exchanged but not linked makes the queue non-empty: pop answers BUSY and hasPendingWork() is true. */
#define POPPABLE  (qhead < qtail && linked[q[qhead]] && (qhead + 1 == qtail || linked[q[qhead + 1]]))
#define LOCAL     (lhead < ltail)

/* runJob */
inline run_task(t) {
    assert(!terminated); assert(!ran[t]);
    ran[t] = 1; nrun++
}

/* The task just run may itself submit from the loop thread (EventLoop.submit with inEventLoop): into
 * localExternal unless localWorkClosed, else it throws .terminated. */
inline maybe_submit_local() {
    if
    :: ltail < NT && !localWorkClosed ->
        ltail++; nacc++; printf("loop: the task submits t%d locally (accepted)\n", ltail - 1)
    :: ltail < NT && localWorkClosed ->
        ltail++; printf("loop: the task's local submit throws terminated\n")
    :: skip
    fi
}

inline drain(n) {
    do
    :: atomic { POPPABLE -> t = q[qhead]; qhead++; run_task(t);
                printf("loop: drain #%d runs t%d\n", n, t); maybe_submit_local() }
    :: atomic { !POPPABLE && LOCAL -> t = lhead; lhead++; run_task(t);
                printf("loop: drain #%d runs local t%d\n", n, t) }
#ifdef DRAIN_IGNORES_BUSY
    :: atomic { !POPPABLE && !LOCAL ->
                printf("loop: drain #%d ends (%d in flight ignored)\n", n, qtail - qhead); break }
#else
    :: atomic { qhead == qtail && !LOCAL -> printf("loop: drain #%d finds every lane empty\n", n); break }
#endif
    od
}

active proctype Loop() {
    byte t;
    byte p = 0;

    drain(1);

    /* lk_gate_close */
#ifndef NO_BARRIER_C
    atomic { closed = 1; printf("loop: closes the gate\n") };
    /* barrier C */
#else
    printf("loop: closes the gate (store buffered)\n");
#endif
    do
    :: p < NP ->
#ifdef NO_BARRIER_C
        if
        :: atomic { !closed -> closed = 1; printf("loop: closed = 1 becomes visible\n") }
        :: skip
        fi;
#endif
#ifndef NO_CLOSER_WAIT
        atomic { inside[p] == 0 -> printf("loop: sees thread %d outside\n", p); p++ }
#else
        p++
#endif
    :: p == NP -> break
    od;
#ifdef NO_BARRIER_C
    atomic { closed = 1; printf("loop: closed = 1 visible (if not yet)\n") };
#endif

#ifndef NO_SECOND_DRAIN
    drain(2);
#endif

    atomic { localWorkClosed = 1; printf("loop: localWorkClosed\n") };

    /* discardQueued: releaseAll pops until EMPTY, waiting while BUSY */
    do
    :: atomic { POPPABLE -> printf("loop: discard releases accepted t%d unrun\n", q[qhead]); qhead++;
                released++; assert(released == 0) }
    :: atomic { !POPPABLE && LOCAL -> printf("loop: discard releases accepted local t%d unrun\n", lhead);
                lhead++; released++; assert(released == 0) }
    :: atomic { qhead == qtail && !LOCAL -> break }
    od;

    atomic { terminated = 1; printf("loop: TERMINATED\n") };

    /* model only: once every submitter has returned, every accepted task must have run */
    (ndone == NP);
    assert(nrun == nacc)
}

active [NP] proctype Submitter() {
    byte p = _pid - 1;                           /* the Loop is pid 0 */
    byte k = 0;                                  /* submissions made */
    bit c;                                       /* closed, as read by lk_gate_enter */

    do
    :: k < KOF(p) ->
        /* lk_gate_enter */
#ifdef NO_BARRIER_S
        if
        :: d_step { inside[p] = 1; printf("T%d: inside = 1\n", p) };
           d_step { c = closed; nacc = nacc + 1 - c; printf("T%d: reads closed = %d\n", p, c) }
        :: d_step { c = closed; nacc = nacc + 1 - c;
                    printf("T%d: reads closed = %d (before its inside = 1 is visible)\n", p, c) };
           d_step { inside[p] = 1; printf("T%d: inside = 1 becomes visible\n", p) }
        fi;
#else
        d_step { inside[p] = 1; printf("T%d: inside = 1\n", p) };
        /* barrier S */
        d_step { c = closed; nacc = nacc + 1 - c; printf("T%d: reads closed = %d\n", p, c) };
#endif
        if
        :: d_step { c -> inside[p] = 0; k++; ndone = ndone + (k == KOF(p));
                    printf("T%d: inside = 0; submit throws terminated\n", p) }
        :: d_step { !c -> q[qtail] = TID(p, k); qtail++;
                    printf("T%d: push t%d (tail exchanged: BUSY)\n", p, TID(p, k));
                    assert(!terminated) };                   /* else nothing will ever pop it */
           d_step { linked[TID(p, k)] = 1; printf("T%d: link t%d\n", p, TID(p, k)) };
           d_step { inside[p] = 0; printf("T%d: inside = 0; submit of t%d returns\n", p, TID(p, k));
                    k++; ndone = ndone + (k == KOF(p)) }
        fi
    :: k == KOF(p) -> break
    od
}

#ifdef LIVENESS
ltl accepted_tasks_run { <> (terminated && ndone == NP && nrun == nacc) }
#endif
