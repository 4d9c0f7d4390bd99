/*
 * lk_gate.h — the admission gate that makes "submit succeeded" and "the final drain saw the task" the same
 * event: a submitter enters the gate, checks that it is open, publishes its task and exits; the loop closes
 * the gate and then waits for every submitter still inside before its final drain. Afterwards no submit can
 * succeed, and every submit that did succeed has published its task where the drain finds it.
 *
 * Cost: entering and exiting are two plain stores and a load on the calling thread's own cache line when the
 * kernel supports membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): the closer then pays for the StoreLoad
 * ordering with one membarrier call (an IPI to each CPU running this process). Without membarrier, entering
 * costs a seq_cst fence. Closing is rare (once per loop), submitting is the hot path.
 *
 * Threading: enter/exit from any thread, strictly paired, not nested on one thread; close from one thread
 * (the loop) at a time.
 */
#ifndef LK_GATE_H
#define LK_GATE_H

#include <stdbool.h>

typedef struct lk_gate lk_gate;

/* Creates an open gate. Returns 0 or -ENOMEM. */
int lk_gate_create(lk_gate **out);
/* Frees the gate. It must be closed or never used: no thread may be inside. */
void lk_gate_destroy(lk_gate *g);

/*
 * Enters the gate. True: the gate was open, and it cannot finish closing until this thread calls
 * lk_gate_exit, so what the caller publishes before exiting is seen by the closer. False: the gate is
 * closed (the caller is not inside; do not call exit). -ENOMEM for the thread's first record is reported as
 * false with *failed set (may be NULL).
 */
bool lk_gate_enter(lk_gate *g, bool *failed);
/* Leaves the gate entered by this thread. */
void lk_gate_exit(void);

/* Closes the gate and returns once no thread is inside it. Idempotent. In membarrier mode a transient
 * membarrier failure is retried; a permanent one (the kernel or a seccomp filter refusing the registered
 * command) aborts the process with a message, since no other barrier can stand in for it safely. */
void lk_gate_close(lk_gate *g);

/* True when the cheap path (membarrier) is in use; false when enter pays a fence. */
bool lk_gate_uses_membarrier(void);

#endif
