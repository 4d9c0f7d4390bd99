/*
 * ingress.pml — the per-producer ingress's scheduling protocol (Sources/CLoopCore/ingress_pp.c, with the
 * single-producer queue of spscq_impl.h, the heavy barrier of barrier_impl.h and the wake handshake of
 * wake.c) as the Swift loop drives it (Sources/LoopKit/EventLoop+Tick.swift: tick, idle, park). Run by
 * `make verify` (scripts/verify.sh); change this model and ingress_pp.c together.
 *
 * Processes and steps (C function / Swift function : the line modelled):
 *   Producer (NP of them, K tasks each, one record each) — lk_ingress_push -> pp_push -> push_from:
 *     write               lk__spscq_push   : slot->task = *task; atomic_store_explicit(&slot->seq, t + 1,
 *                                            release)   (the publish: into the store buffer, see below)
 *     (compiler barrier)  push_from        : atomic_signal_fence(memory_order_seq_cst)
 *     load FAST           push_from        : if (atomic_load_explicit(&p->flags, relaxed) & PP_FAST) return 0
 *     (fence)             push_from        : atomic_thread_fence(memory_order_seq_cst)   [NO_PUSH_FENCE]
 *     load SCHEDULED      push_from        : if (atomic_load_explicit(&p->flags, relaxed) & PP_SCHEDULED) ...
 *     announce            announce         : old = atomic_fetch_or_explicit(&p->flags, PP_SCHEDULED, acq_rel);
 *                                            if (old & PP_SCHEDULED) return 0
 *     ready_push          ready_push       : compare_exchange of ing->ready (release)
 *     notify              lk_wake_notify   : seq_cst fence; state == SLEEPING ? (lk__ingress_after_push)
 *     claim, write        lk_wake_signal   : exchange(&w->pending, 1); write_signal (sets `ev`)
 *     exit (-DEXIT)       exit_record_locked : old = fetch_or(PP_PRODUCER_GONE | PP_SCHEDULED, acq_rel);
 *                                            if (!(old & PP_SCHEDULED)) { ready_push; lk__ingress_notify }
 *                                            [EXIT_WITHOUT_NOTIFY]
 *   Memory — the producers' store buffers: a buffered seq store becomes visible, oldest first, at any time.
 *   Loop — EventLoop.run's `while ... { tick() }`; tick -> runExternalLane -> lk_ingress_pop_batch:
 *     collect             collect_ready    : atomic_exchange_explicit(&ing->ready, NULL, acquire); appends
 *                                            each record (active_append)
 *     visit               pp_pop_batch     : lk__spscq_pop_batch(&p->q, ...) on each held record in turn;
 *                                            one task per visit
 *     set_fast            pp_pop_batch     : set_fast(p): fetch_or FAST (relaxed); p->fast = true
 *     retire              pp_pop_batch     : else if (++p->idle >= PP_IDLE_LIMIT || producer_gone(p)) retire
 *                         retire           : if (producer_gone(p)) { empty ? reap : keep }
 *                                            active_remove; if (p->fast) { clear_fast: fetch_and ~FAST
 *                                            (seq_cst); lk__barrier_heavy() [NO_HEAVY_BARRIER] }
 *                                            unschedule_unless_gone: fetch_and ~SCHEDULED (seq_cst), and when
 *                                            the old value has GONE, SCHEDULED back and keep (or reap) the
 *                                            record [UNSCHEDULE_IGNORES_GONE]; fence [NO_RETIRE_FENCE]
 *                                            if (!lk__spscq_is_empty(&p->q) && reclaim(p)) active_append
 *                                            [NO_RECHECK, RECLAIM_IGNORES_ANNOUNCE]
 *                         reclaim          : fetch_or SCHEDULED (acq_rel); ours if it was clear
 *     tick_check          tick             : if hasPendingWork() { pollIO(0) } else { idle() }
 *     (poll)              tick / spin      : pollIO(timeoutNanoseconds: 0) may consume an eventfd write
 *   Loop — park():
 *     prepare (ingress)   pp_prepare_park  : clear_fast on each held record with p->fast && !producer_gone;
 *                                            one lk__barrier_heavy() if any [NO_HEAVY_BARRIER]; then on each
 *                                            held record !producer_gone: unschedule_unless_gone,
 *                                            p->unscheduled = !(gone meanwhile)
 *     prepare (wake)      lk_wake_prepare_park : pending = 0; CAS state RUNNING -> SLEEPING; seq_cst fence
 *     recheck             park             : if hasPendingWork() { finish_parks; return }
 *                         pp_is_empty      : ready stack non-NULL [NO_READY_RECHECK], or a held record's
 *                                            queue non-empty
 *     block               park/waitForIO   : lk_poller_wait(poller, -1, ...): returns on an eventfd write
 *     finish (wake)       lk_wake_finish_park : CAS state SLEEPING -> RUNNING
 *     finish (ingress)    pp_finish_park   : unscheduled: if (is_empty || !reclaim(p)) active_remove
 *                                            [NO_RECHECK, RECLAIM_IGNORES_ANNOUNCE]; otherwise a GONE record
 *                                            found empty is reaped
 *     reap                reap             : active_remove; registry_remove; record_free
 *
 * Records. One per producer. Its queue holds tasks head[p] .. vis[p]-1 (visible, not yet run); pushed[p] -
 * vis[p] more are written with their seq stores still buffered. Flag bits: sched, fast, gone. Where it is:
 * rdy (the ready stack), act (the loop's active list); loop-private: lfast (p->fast), unsch
 * (p->unscheduled). The ready stack's order is left out (it only orders the appends), and so is the active
 * list's rotation (the loop visits the held records in index order). The spscq's own protocol (segments,
 * recycling) is lk_spscq's business (fuzz/, the tests): a task is in the queue once its seq store is
 * visible, and the loop reads it only then.
 *
 * Weak memory. Promela interleaves, i.e. it is sequentially consistent, so each barrier is modelled by what
 * it forbids. A producer's publish (its seq store) goes into a store buffer (pushed[p] - vis[p] stores, in
 * order: release stores never overtake each other) that the Memory process drains at arbitrary moments, so
 * every later step of the producer, its flags loads above all, may run while the publish is invisible to
 * the loop. The push's fence drains the buffer before the SCHEDULED load (NO_PUSH_FENCE: it does not); the
 * producer's read-modify-writes (announce, exit) drain it as well (locked instructions on x86; in C11 their
 * release publishes the tasks to whoever acquires the record through them). The FAST load has no fence:
 * the loop's heavy barrier (membarrier) runs a full barrier in every producer's instruction stream, modelled
 * as "every producer's buffered stores become visible at the moment of the barrier": a producer whose FAST
 * load came before the barrier has its publish visible once the barrier completes, and one whose load comes
 * after it sees FAST clear (cleared before the barrier). A FAST load between the loop's clear and its
 * barrier that still reads FAST (C11 allows it) is equivalent to a load just before the clear (nothing else
 * the producer reads changes meanwhile), so the clear is visible at once. The loop's flag updates are
 * seq_cst read-modify-writes, visible when they happen; its fences (retire's; lk_wake_prepare_park's at a
 * park) order them before its re-checks; without retire's (NO_RETIRE_FENCE) the re-check may be satisfied
 * before the clear of SCHEDULED is visible. The release/acquire pairs (ready_push -> collect_ready, exit ->
 * producer_gone, seq store -> pop) need no model: interleaving gives them. hasPendingWork is one atomic
 * step: the ready stack and the held queues it reads are emptied only by the loop itself, so reading them
 * one after the other answers as one atomic read at the first or the last of them would.
 *
 * Abstractions. FAST may be set at any visit of a held record: the C code waits for PP_FAST_AFTER tasks, a
 * count the protocol does not depend on, and this way one task per producer can already take the fast
 * path. Membarrier is assumed to work (in fence mode FAST is never set, and lk__barrier_heavy is a fence of
 * the loop's own: NO_HEAVY_BARRIER as far as fast pushes are concerned). Retiring a record whose visit found
 * it empty is a free choice (the PP_IDLE_LIMIT count), forced once producer_gone. The loop's spin is folded
 * into tick_check (a spin that finds work is a later check). The wake handshake's own races are
 * spin/wake.pml's; here a blocked loop wakes only on an eventfd write, and the non-blocking polls of tick
 * and spin may consume a write (so that a stale one cannot hide a lost wakeup).
 *
 * Properties. Safety (-DSAFETY): each task runs at most once, and only once published (assertions); a record
 * is never pushed on the ready stack while on it, nor appended to the active list while in it ("a record in
 * two places", assertions); a record is reaped only when its thread has exited and every task it pushed
 * has run; no invalid end state: the loop may stop only when every task has run (the `nrun == NT` exit in
 * block is a model-only escape), so a loop blocked for good with a task published and no eventfd write
 * coming, a lost task, is an invalid end state. Liveness (-DLIVENESS, `pan -a -f`): under weak fairness
 * every task eventually runs.
 *
 * Mutants (each must produce a counterexample; ingress_pp.c names the first four next to their lines,
 * NO_READY_RECHECK is pp_is_empty's first test and RECLAIM_IGNORES_ANNOUNCE reclaim's result):
 *   NO_PUSH_FENCE      push_from's fence removed: the SCHEDULED load may precede the publish; the producer
 *                      sees its record held and returns, the loop unschedules it and re-checks an empty queue.
 *   NO_HEAVY_BARRIER   the loop clears FAST but runs no membarrier (retire, pp_prepare_park): a fast push
 *                      whose publish is still buffered is missed by the re-check.
 *   NO_RETIRE_FENCE    retire's fence after fetch_and ~SCHEDULED removed: the re-check may precede the clear.
 *   NO_RECHECK         the loop drops a record it unscheduled without re-checking its queue (retire; and
 *                      pp_finish_park drops every unscheduled record).
 *   NO_READY_RECHECK   pp_is_empty ignores the ready stack: an announcement made while the loop was RUNNING
 *                      (no eventfd write) is missed by the re-check before blocking.
 *   RECLAIM_IGNORES_ANNOUNCE  reclaim keeps the record whatever fetch_or returned: when the producer has
 *                      announced it, it is both in the active list and on the ready stack, and collect_ready
 *                      appends it a second time. That corrupts the circular list (records drop out of the
 *                      rotation): the safety run asserts, and in the liveness run (assertions off) the model
 *                      stops the loop there.
 *
 * Thread exit (-DEXIT: every producer exits after its K tasks, as exit_record_locked does: fetch_or GONE |
 * SCHEDULED; if SCHEDULED was clear, ready_push and lk_wake_notify). Checked in addition: no record is
 * leaked — once every task has run and every producer has exited, each record is freed or still in the
 * ready stack or the active list (an assertion where the model stops, and part of the liveness formula).
 *   EXIT_WITHOUT_NOTIFY  the exit pushes the record without notifying: when its fetch_or lands between the
 *                      loop's fetch_and ~SCHEDULED and its reclaim while the record holds a task, the
 *                      reclaim fails and the loop leaves the record to the ready stack; if it parks before
 *                      the ready_push, its re-check finds the stack empty and it blocks with the task queued.
 *   UNSCHEDULE_IGNORES_GONE  retire and pp_prepare_park ignore the old value of their fetch_and ~SCHEDULED:
 *                      an exit that found the record held (and so pushed nothing) leaves a GONE record the
 *                      loop then drops, in no list, never reaped (a leak; no task is lost).
 *
 * Not modelled: ingress destruction (LOOP_GONE; ordered by lk__pp_lock, no push or pop running),
 * registration (a record exists before its first push), shutdown (spin/gate.pml), timers and I/O (they only
 * end a sleep early), failed eventfd writes, membarrier failures (the process stops: barrier.c).
 */

#ifndef NP
#define NP 2                    /* producers, one record each */
#endif
#ifndef K
#define K 2                     /* tasks per producer */
#endif
#if NP > 3
#error "Memory handles at most 3 producers"
#endif
#if defined(EXIT_WITHOUT_NOTIFY) || defined(UNSCHEDULE_IGNORES_GONE)
#define EXIT
#endif
#define NT (NP * K)             /* task ids 0 .. NT-1: producer p's k-th task is p*K + k */

#define RUNNING  1
#define SLEEPING 2

byte state = RUNNING;           /* w->state; run() has already moved it AWAKE -> RUNNING */
bit pending = 0;                /* w->pending */
bit ev = 0;                     /* an eventfd write no poll has reported yet */

byte pushed[NP];                /* tasks written, seq stored (visible or still in the store buffer) */
byte vis[NP];                   /* tasks whose seq store is visible to the loop */
byte head[NP];                  /* tasks the loop has popped (q->head) */
bit sched[NP];                  /* flags & PP_SCHEDULED */
bit fast[NP];                   /* flags & PP_FAST */
bit gone[NP];                   /* flags & PP_PRODUCER_GONE */
bit rdy[NP];                    /* on the ready stack */
bit act[NP];                    /* in the loop's active list */
bit lfast[NP];                  /* p->fast (loop-private) */
bit unsch[NP];                  /* p->unscheduled (loop-private) */
bit freed[NP];                  /* reaped */
byte nexited = 0;               /* producers whose exit is complete (-DEXIT) */
bit ran[NT];
byte nrun = 0;
bit broken = 0;                 /* RECLAIM_IGNORES_ANNOUNCE: the active list is corrupt */

#define EMPTY(i) (head[i] == vis[i])    /* lk__spscq_is_empty */
/* An exited producer's record is freed, or still where the loop looks (to be reaped once it runs again). */
#define PLACED(i) (!gone[i] || freed[i] || act[i] || rdy[i])

/* lk__barrier_heavy in membarrier mode: a full barrier in every producer's instruction stream. */
inline heavy_barrier() {
#ifndef NO_HEAVY_BARRIER
    d_step {
        j = 0;
        do
        :: j < NP -> vis[j] = pushed[j]; j++
        :: else -> break
        od;
        j = 0;
        printf("loop: membarrier (every producer's buffered stores visible)\n")
    }
#else
    printf("loop: no membarrier\n")
#endif
}

/* hasPendingWork() -> pp_is_empty: the ready stack, then each held record's queue. */
inline pending_work() {
    atomic {
        work = 0; j = 0;
        do
#ifdef NO_READY_RECHECK
        :: j < NP -> work = work || (act[j] && !EMPTY(j)); j++
#else
        :: j < NP -> work = work || rdy[j] || (act[j] && !EMPTY(j)); j++
#endif
        :: else -> break
        od;
        j = 0
    }
}

/* pollIO(timeoutNanoseconds: 0), when it happens (tick's while work remains, spin's every 5 us): reports,
 * and so consumes, a pending eventfd write. */
inline poll_nonblocking() {
    if
    :: d_step { ev -> ev = 0; printf("loop: pollIO(0) consumes the eventfd write\n") }
    :: skip
    fi
}

inline active_append(i) {
    if
    :: act[i] -> printf("loop: appends record %d, already in the active list: the list is corrupt\n", i);
                 assert(!act[i]); broken = 1
    :: else -> act[i] = 1; lfast[i] = 0; unsch[i] = 0
    fi
}

/* A GONE record found empty: unlink and free it. */
inline reap(i) {
    assert(gone[i] && head[i] == pushed[i]);  /* every task its thread pushed has run */
    act[i] = 0; freed[i] = 1;
    printf("loop: reaps record %d\n", i)
}

/* reclaim: fetch_or SCHEDULED (acq_rel); old = the bit before. */
inline reclaim(i) {
    d_step {
        old = sched[i]; sched[i] = 1;
        printf("loop: reclaims record %d: SCHEDULED was %d\n", i, old)
    }
}

/* retire(ing, p) on a held record whose visit found it empty. */
/* unschedule_unless_gone: fetch_and ~SCHEDULED (seq_cst), whose old value says whether the thread exited
 * while the loop held the record; then the loop puts SCHEDULED back (its exit pushed nothing). old := GONE. */
inline unschedule(i) {
    d_step {
        old = gone[i]; sched[i] = 0;
#ifdef UNSCHEDULE_IGNORES_GONE
        old = 0;
#endif
        if
        :: old -> sched[i] = 1; printf("loop: clears SCHEDULED on record %d: GONE meanwhile, puts it back\n", i)
        :: else -> printf("loop: clears SCHEDULED on record %d\n", i)
        fi
    }
}

/* retire(ing, p) on a held record whose visit found it empty. */
inline retire(i) {
    if
    :: d_step { gone[i] -> printf("loop: retire: record %d GONE\n", i) };
       if
       :: d_step { EMPTY(i) -> reap(i) }
       :: d_step { !EMPTY(i) -> printf("loop: keeps GONE record %d (its last tasks first)\n", i) }
       fi
    :: d_step { !gone[i] -> printf("loop: retires record %d\n", i) };
       if
       :: lfast[i] ->
           d_step { fast[i] = 0; lfast[i] = 0; printf("loop: clears FAST on record %d\n", i) };
           heavy_barrier()
       :: else -> skip
       fi;
#if defined(NO_RECHECK)
       unschedule(i);
       work = 0;
#elif defined(NO_RETIRE_FENCE)
       if
       :: unschedule(i);
          d_step { work = !EMPTY(i); printf("loop: re-check finds %d queued\n", vis[i] - head[i]) }
       :: d_step { work = !EMPTY(i);
                   printf("loop: re-check finds %d queued (before the clear is visible)\n", vis[i] - head[i]) };
          unschedule(i)
       fi;
#else
       unschedule(i);
       /* seq_cst fence */
       d_step { work = !EMPTY(i); printf("loop: re-check finds %d queued\n", vis[i] - head[i]) };
#endif
       if
       :: old ->                                  /* GONE while held: kept, or reaped once drained */
           if
           :: d_step { EMPTY(i) -> reap(i) }
           :: d_step { !EMPTY(i) -> skip }
           fi
       :: else ->
           d_step { act[i] = 0; printf("loop: record %d leaves the active list\n", i) };
           if
           :: work ->
               reclaim(i);
#ifdef RECLAIM_IGNORES_ANNOUNCE
               d_step { active_append(i) }
#else
               if
               :: !old -> d_step { active_append(i) }
               :: old -> skip                     /* the producer announced it: the ready stack */
               fi
#endif
           :: else -> skip
           fi
       fi;
       work = 0; old = 0
    fi
}

active proctype Loop() {
    byte i;
    byte j;
    bit work;
    bit old;
    bit any;

tick:
    /* pp_pop_batch: collect_ready */
    atomic {
        i = 0;
        do
        :: i < NP ->
            if
            :: rdy[i] -> printf("loop: collects record %d\n", i);
                         assert(!freed[i]); rdy[i] = 0; active_append(i)
            :: else -> skip
            fi;
            i++
        :: else -> break
        od;
        i = 0
    }
    (!broken);                                   /* model only: a corrupt list ends the model's loop */
    /* the visits */
    do
    :: i < NP ->
        if
        :: atomic { act[i] && !EMPTY(i) ->
                    assert(head[i] < vis[i] && vis[i] <= pushed[i]);
                    assert(!ran[i * K + head[i]]);
                    ran[i * K + head[i]] = 1; head[i]++; nrun++;
                    printf("loop: runs t%d\n", i * K + head[i] - 1) }
        :: atomic { act[i] && EMPTY(i) -> skip };
           if
           :: retire(i)
           :: d_step { !gone[i] -> skip }        /* not idle long enough */
           fi
        :: !act[i] -> skip
        fi;
        if
        :: d_step { act[i] && !lfast[i] ->
                    fast[i] = 1; lfast[i] = 1; printf("loop: sets FAST on record %d\n", i) }
        :: skip
        fi;
        i++
    :: else -> i = 0; break
    od;

    /* tick step 5: hasPendingWork() ? poll without blocking : idle() */
    pending_work();
    if
    :: work -> work = 0; poll_nonblocking(); goto tick
    :: else -> poll_nonblocking()                /* idle(): spin's periodic pollIO(0) */
    fi;

    /* park(): pp_prepare_park */
    do
    :: i < NP ->
        if
        :: act[i] && lfast[i] ->
            if
            :: d_step { !gone[i] -> fast[i] = 0; lfast[i] = 0; any = 1;
                        printf("loop: park: clears FAST on record %d\n", i) }
            :: d_step { gone[i] -> skip }
            fi
        :: else -> skip
        fi;
        i++
    :: else -> i = 0; break
    od;
    if
    :: any -> heavy_barrier(); any = 0
    :: else -> skip
    fi;
    do
    :: i < NP ->
        if
        :: act[i] ->
            if
            :: d_step { gone[i] -> skip }
            :: d_step { !gone[i] -> skip };
               unschedule(i);
               d_step { unsch[i] = !old; old = 0 }
            fi
        :: else -> skip
        fi;
        i++
    :: else -> i = 0; break
    od;

    /* lk_wake_prepare_park: reset pending, CAS RUNNING -> SLEEPING, seq_cst fence */
    atomic { pending = 0; state = SLEEPING; printf("loop: SLEEPING\n") };
    /* park: hasPendingWork() */
    pending_work();
    if
    :: work -> printf("loop: re-check finds work: does not block\n"); work = 0
    :: else ->
        printf("loop: re-check finds nothing: blocks\n");
        if
        :: atomic { ev -> ev = 0; printf("loop: woken by the eventfd\n") }
#ifdef EXIT
        :: atomic { nrun == NT && nexited == NP -> goto done } /* model only: all ran and exited, stop */
#else
        :: atomic { nrun == NT -> goto done }    /* model only: every task ran, stop here */
#endif
        fi
    fi;
    /* lk_wake_finish_park */
    d_step { state = RUNNING; printf("loop: finish_park: RUNNING\n") };
    /* pp_finish_park */
    do
    :: i < NP ->
        if
        :: act[i] && !unsch[i] ->
            if
            :: d_step { gone[i] && EMPTY(i) -> reap(i) }
            :: d_step { !(gone[i] && EMPTY(i)) -> skip }
            fi
        :: act[i] && unsch[i] ->
            unsch[i] = 0;
#ifdef NO_RECHECK
            d_step { act[i] = 0; printf("loop: finish_park drops record %d without a re-check\n", i) }
#else
            if
            :: d_step { EMPTY(i) -> act[i] = 0; printf("loop: finish_park lets record %d go (empty)\n", i) }
            :: atomic { !EMPTY(i) -> reclaim(i) };
# ifdef RECLAIM_IGNORES_ANNOUNCE
               skip
# else
               if
               :: d_step { old -> act[i] = 0; printf("loop: finish_park lets record %d go (announced)\n", i) }
               :: else -> skip
               fi
# endif
            fi;
            old = 0
#endif
        :: else -> skip
        fi;
        i++
    :: else -> i = 0; break
    od;
    goto tick;
done:
    skip;
#ifdef EXIT
    /* No record leaked: an exited producer's record is freed, or still where the loop looks (the ready
     * stack, the active list), to be reaped once the loop runs again. */
    d_step {
        i = 0;
        do
        :: i < NP -> assert(PLACED(i)); i++
        :: else -> break
        od
    }
#endif
}

/* lk__ingress_after_push -> lk_wake_notify: seq_cst fence, state == SLEEPING ? lk_wake_signal */
inline notify() {
    d_step {
        s = (state == SLEEPING);
        if
        :: s -> printf("P%d: notify: reads state SLEEPING\n", p)
        :: else -> printf("P%d: notify: reads state RUNNING\n", p)
        fi
    };
    if
    :: s ->
        d_step { old = pending; pending = 1; printf("P%d: exchanges pending: was %d\n", p, old) };
        if
        :: old == 0 -> d_step { ev = 1; printf("P%d: writes the eventfd\n", p) }
        :: else -> skip
        fi
    :: else -> skip
    fi
}

/* ready_push: the CAS that puts the record on the ready stack (release). */
inline ready_push() {
    d_step {
        assert(!rdy[p] && !freed[p]); rdy[p] = 1;
        printf("P%d: pushes record %d on the ready stack\n", p, p)
    }
}

active [NP] proctype Producer() {
    byte p = _pid - 1;                           /* the Loop is pid 0 */
    byte k = 0;
    bit s;
    bit old;

    do
    :: k < K ->
        d_step { pushed[p]++; printf("P%d: writes t%d, stores its seq (release; buffered)\n", p, p * K + k) };
        /* compiler barrier; load flags */
        if
        :: d_step { fast[p] -> printf("P%d: sees FAST: done\n", p) }
        :: d_step { !fast[p] -> printf("P%d: FAST clear\n", p) };
#ifndef NO_PUSH_FENCE
           d_step { vis[p] = pushed[p]; printf("P%d: fence (its publish visible)\n", p) };
#endif
           d_step { s = sched[p]; printf("P%d: reads SCHEDULED = %d\n", p, s) };
           if
           :: s -> skip
           :: !s ->
               /* announce */
               d_step { old = sched[p]; sched[p] = 1; vis[p] = pushed[p];
                        printf("P%d: announces: SCHEDULED was %d\n", p, old) };
               if
               :: !old -> ready_push(); notify()
               :: old -> skip                     /* the loop reclaimed the record */
               fi
           fi
        fi;
        s = 0; old = 0;
        k++
    :: k == K -> break
    od;
#ifdef EXIT
    /* exit_record_locked */
    atomic { old = sched[p]; sched[p] = 1; gone[p] = 1; vis[p] = pushed[p];
             printf("P%d: exits: GONE | SCHEDULED, SCHEDULED was %d\n", p, old) };
    if
    :: !old -> ready_push();
# ifndef EXIT_WITHOUT_NOTIFY
        notify()
# else
        skip
# endif
    :: old -> skip
    fi;
    d_step { nexited++ }
#endif
}

/* The producers' store buffers: each buffered seq store becomes visible at some point, oldest first. */
active proctype Memory() {
end:
    do
    :: d_step { vis[0] < pushed[0] -> vis[0]++; printf("P0's publish becomes visible\n") }
#if NP > 1
    :: d_step { vis[1] < pushed[1] -> vis[1]++; printf("P1's publish becomes visible\n") }
#endif
#if NP > 2
    :: d_step { vis[2] < pushed[2] -> vis[2]++; printf("P2's publish becomes visible\n") }
#endif
    od
}

#ifdef LIVENESS
# if defined(EXIT) && NP == 2
ltl every_task_runs { <> (nrun == NT && PLACED(0) && PLACED(1)) }
# elif defined(EXIT) && NP == 3
ltl every_task_runs { <> (nrun == NT && PLACED(0) && PLACED(1) && PLACED(2)) }
# else
ltl every_task_runs { <> (nrun == NT) }
# endif
#endif
