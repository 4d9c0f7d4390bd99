/*
 * debug_impl.h — contract checks of the C core, compiled in under LK_DEBUG (debug builds: `make test`,
 * the fuzz harnesses) and to nothing otherwise.
 *
 *   LK_ASSERT(condition, message)   stops the process with the message when the condition is false.
 *   lk_owner                        the thread an object's single-thread side belongs to: the consumer of a
 *                                   queue, the loop thread of a poller or of a park. Recorded by the first
 *                                   call that names it (lk__owner_check) and checked by every later one;
 *                                   lk__owner_release forgets it where a documented hand-over moves that side
 *                                   to another thread (a queue drained by the thread that frees its loop).
 * A failed check names the object and the two threads, so the misuse shows in the message, not in a
 * corrupted queue later.
 */
#ifndef LK_DEBUG_IMPL_H
#define LK_DEBUG_IMPL_H

#include <stdint.h>

#include "lk_atomic.h"

/* The owner record exists in every build (8 bytes, untouched unless LK_DEBUG), so that the code naming it
 * is the same in both. */
typedef struct lk_owner {
    /* The owning thread's id, 0 until the first check. CAS 0 -> tid by the first checker (relaxed: a debug
     * record; the object's own synchronisation orders its users); loaded by later checks (relaxed). */
    _Atomic uint64_t tid;
} lk_owner;
#define LK_OWNER_FIELD(name) lk_owner name;
#define LK_OWNER_INIT(owner) atomic_init(&(owner)->tid, 0)

#ifdef LK_DEBUG

void lk__assert_fail(const char *condition, const char *message, const char *file, int line);
#define LK_ASSERT(condition, message) \
    ((condition) ? (void)0 : lk__assert_fail(#condition, (message), __FILE__, __LINE__))

void lk__owner_check(lk_owner *owner, const char *what);
void lk__owner_release(lk_owner *owner);

#else

#define LK_ASSERT(condition, message) ((void)0)
#define lk__owner_check(owner, what) ((void)(owner))
#define lk__owner_release(owner) ((void)(owner))

#endif

#endif
