/*
 * fault_hook.h — the hook each injectable call site runs before its system call or allocation
 * (see lk_fault.h). Internal to CLoopCore.
 */
#ifndef LK_FAULT_HOOK_H
#define LK_FAULT_HOOK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "lk_atomic.h"
#include "lk_fault.h"

/* Bit i set while point i is armed. Stored by lk_fault_arm / disarm under fault.c's lock (relaxed);
 * loaded by every hook (relaxed: a test arms a point before it starts the operation it targets and hands
 * that operation to the injecting thread through the core's own synchronisation — a queue push, a thread
 * start — so no ordering is needed here; a stale 0 only means the fault strikes a call later). */
extern _Atomic uint32_t lk__fault_armed;

/* Slow path: the errno to inject for this call of `point`, or 0 to let it through. */
int lk__fault_take(lk_fault_point point);

/* 0 to make the call, or the errno value the call must fail with. */
static inline int lk__fault(lk_fault_point point) {
    /* relaxed: see the declaration. */
    if (__builtin_expect((atomic_load_explicit(&lk__fault_armed, memory_order_relaxed) & (1u << point)) == 0, 1))
        return 0;
    return lk__fault_take(point);
}

/* For a call reporting failure through errno: true (errno set) when the call must fail. */
static inline bool lk__fault_errno(lk_fault_point point) {
    int e = lk__fault(point);
    if (e == 0) return false;
    errno = e;
    return true;
}

/* True when the allocation at `point` must fail. */
static inline bool lk__fault_alloc(lk_fault_point point) { return lk__fault(point) != 0; }

#endif
