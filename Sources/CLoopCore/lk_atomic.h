/*
 * lk_atomic.h — the only file that includes <stdatomic.h>. Everything lock-free in CLoopCore includes this
 * header and uses the *_explicit operations with a named order (`make lint` enforces both rules).
 *
 * Vocabulary used in the ordering comments:
 *   "publishes X"  a release store (or RMW) after which X's writes are visible to whoever acquires it;
 *   "pairs with"   the acquire (or release) operation on the same atomic at the other end;
 *   "StoreLoad"    a seq_cst fence: needed where a thread stores one flag and then loads another
 *                  (Dekker); release/acquire alone lets the load pass the store, even on x86.
 */
#ifndef LK_ATOMIC_H
#define LK_ATOMIC_H

#include <stdalign.h>
#include <stdatomic.h>

/* x86-64 and most arm64 parts: 64-byte lines. Adjacent-line prefetch makes 128 safer for the two ends of a
 * queue, at the cost of some memory; LoopKit keeps producer- and consumer-written fields 128 bytes apart. */
#define LK_CACHELINE 64
#define LK_FALSE_SHARING_RANGE 128

#endif

