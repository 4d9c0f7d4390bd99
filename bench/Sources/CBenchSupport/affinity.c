/* affinity.c — pin the calling thread to one CPU and back, alone on it if asked (the latency workloads'
 * producer), and its timer slack.
 *
 * lkb_pin_thread_alone also moves every other thread of the process off `cpu`, so that the entrant's threads
 * (its loop, a pool's workers) run on the other CPUs whatever the scheduler's wake-up placement would choose:
 * on a small machine it otherwise sometimes puts the loop on the producer's CPU, and the two then take turns
 * on one CPU instead of handing work across two. A thread started while the pin holds inherits its creator's
 * mask: the entrant's threads start theirs, so they stay off `cpu` too. lkb_unpin_thread gives each of those
 * threads the mask it had before (one started meanwhile, the caller's earlier mask). */
#include "lkb.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Thread_local cpu_set_t lkb_saved_mask;
static _Thread_local int lkb_saved = 0;

/* The other threads' masks while a pin_alone holds (the pinning thread's own variables: one pin at a time). */
typedef struct {
    pid_t tid;
    cpu_set_t mask;
} saved_thread;
static _Thread_local saved_thread *lkb_others = NULL;
static _Thread_local size_t lkb_other_count = 0;

/* Calls `f(tid, arg)` for every thread of the process except the caller. */
static void for_other_threads(void (*f)(pid_t, void *), void *arg) {
    pid_t self = (pid_t)syscall(SYS_gettid);
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid > 0 && tid != self) f(tid, arg);
    }
    closedir(dir);
}

static void move_off(pid_t tid, void *arg) {
    const cpu_set_t *others = arg;
    cpu_set_t before;
    if (sched_getaffinity(tid, sizeof(before), &before) != 0) return; /* it exited */
    saved_thread *grown = realloc(lkb_others, (lkb_other_count + 1) * sizeof(*grown));
    if (grown == NULL) return;
    lkb_others = grown;
    lkb_others[lkb_other_count++] = (saved_thread){tid, before};
    cpu_set_t mask;
    CPU_AND(&mask, &before, others);
    if (CPU_COUNT(&mask) == 0) mask = *others; /* it was pinned to `cpu` alone */
    sched_setaffinity(tid, sizeof(mask), &mask);
}

static void restore(pid_t tid, void *arg) {
    (void)arg;
    for (size_t i = 0; i < lkb_other_count; i++) {
        if (lkb_others[i].tid == tid) {
            sched_setaffinity(tid, sizeof(cpu_set_t), &lkb_others[i].mask);
            return;
        }
    }
    sched_setaffinity(tid, sizeof(lkb_saved_mask), &lkb_saved_mask); /* started while the pin held */
}

int lkb_pin_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
    if (pthread_getaffinity_np(pthread_self(), sizeof(lkb_saved_mask), &lkb_saved_mask) != 0) return -1;
    if (CPU_COUNT(&lkb_saved_mask) < 2 || !CPU_ISSET(cpu, &lkb_saved_mask)) return -1; /* nothing to pin apart */
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    if (pthread_setaffinity_np(pthread_self(), sizeof(only), &only) != 0) return -1;
    lkb_saved = 1;
    return 0;
}

int lkb_pin_thread_alone(int cpu) {
    if (lkb_pin_thread(cpu) != 0) return -1;
    cpu_set_t others = lkb_saved_mask;
    CPU_CLR(cpu, &others);
    lkb_other_count = 0;
    for_other_threads(move_off, &others);
    return 0;
}

void lkb_unpin_thread(void) {
    if (!lkb_saved) return;
    pthread_setaffinity_np(pthread_self(), sizeof(lkb_saved_mask), &lkb_saved_mask);
    if (lkb_others != NULL) {
        for_other_threads(restore, NULL);
        free(lkb_others);
        lkb_others = NULL;
        lkb_other_count = 0;
    }
    lkb_saved = 0;
}

void lkb_set_timer_slack_ns(unsigned long ns) { prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }
