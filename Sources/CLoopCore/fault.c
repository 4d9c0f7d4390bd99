/*
 * fault.c — the armed state of the fault-injection points (see lk_fault.h). Arming and the slow path of
 * the hooks take one mutex; the hooks' fast path only reads lk__fault_armed.
 */
#include "fault_hook.h"

#include <errno.h>
#include <pthread.h>

typedef struct lk_fault_state {
    int error;
    uint32_t skip;
    uint32_t count;   /* LK_FAULT_FOREVER: no limit */
    uint64_t injected;
} lk_fault_state;

_Atomic uint32_t lk__fault_armed = 0;

static pthread_mutex_t lk__fault_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_fault_state lk__faults[LK_FAULT_POINT_COUNT]; /* guarded by lk__fault_lock */

/* Under the lock: publishes the armed mask. */
static void update_mask(void) {
    uint32_t mask = 0;
    for (int i = 0; i < LK_FAULT_POINT_COUNT; i++)
        if (lk__faults[i].count != 0) mask |= 1u << i;
    /* relaxed: the hooks load it relaxed, and the slow path re-reads the point's state under the lock. */
    atomic_store_explicit(&lk__fault_armed, mask, memory_order_relaxed);
}

static bool valid(lk_fault_point point) { return (unsigned)point < (unsigned)LK_FAULT_POINT_COUNT; }

void lk_fault_arm(lk_fault_point point, int error, uint32_t skip, uint32_t count) {
    if (!valid(point)) return;
    pthread_mutex_lock(&lk__fault_lock);
    lk__faults[point].error = error;
    lk__faults[point].skip = skip;
    lk__faults[point].count = count;
    update_mask();
    pthread_mutex_unlock(&lk__fault_lock);
}

void lk_fault_disarm(lk_fault_point point) { lk_fault_arm(point, 0, 0, 0); }

void lk_fault_disarm_all(void) {
    pthread_mutex_lock(&lk__fault_lock);
    for (int i = 0; i < LK_FAULT_POINT_COUNT; i++) lk__faults[i].count = 0;
    update_mask();
    pthread_mutex_unlock(&lk__fault_lock);
}

uint64_t lk_fault_injected(lk_fault_point point) {
    if (!valid(point)) return 0;
    pthread_mutex_lock(&lk__fault_lock);
    uint64_t n = lk__faults[point].injected;
    pthread_mutex_unlock(&lk__fault_lock);
    return n;
}

int lk__fault_take(lk_fault_point point) {
    int error = 0;
    pthread_mutex_lock(&lk__fault_lock);
    lk_fault_state *f = &lk__faults[point];
    if (f->count != 0) {
        if (f->skip > 0) {
            f->skip--;
        } else {
            error = f->error != 0 ? f->error : ENOMEM;
            f->injected++;
            if (f->count != LK_FAULT_FOREVER && --f->count == 0) update_mask();
        }
    }
    pthread_mutex_unlock(&lk__fault_lock);
    return error;
}
