/* thread.c — storage for the thread-local loop id and the id allocator (see lk_thread.h). */
#include "lk_thread.h"

#include <sys/prctl.h>

#include "lk_atomic.h"

_Thread_local uint64_t lk__thread_loop_id = 0;

/* Last id handed out. fetch_add relaxed: ids must be unique, which atomicity alone guarantees. */
static _Atomic uint64_t lk__last_loop_id = 0;

uint64_t lk_thread_next_loop_id(void) {
    return atomic_fetch_add_explicit(&lk__last_loop_id, 1, memory_order_relaxed) + 1;
}

void lk_thread_set_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }
