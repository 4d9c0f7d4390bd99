/* affinity.c — give the latency workloads' producer a CPU of its own and back, and its timer slack.
 *
 * lkb_pin_thread pins the calling thread to `cpu` and moves every other thread of the process off it, so
 * that the entrant's threads (its loop, a pool's workers) run on the other CPUs whatever the scheduler's
 * wake-up placement would choose: on a small machine it otherwise sometimes puts the loop on the producer's
 * CPU, and the two then take turns on one CPU instead of handing work across two. A thread started while
 * the pin holds inherits its creator's mask: the entrant's threads start theirs, so they stay off `cpu` too.
 * lkb_unpin_thread gives every thread the mask the caller had before. */
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

/* Sets `mask` on every thread of the process except `self` (a thread that exits meanwhile is skipped). */
static void set_other_threads(pid_t self, const cpu_set_t *mask) {
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid > 0 && tid != self) sched_setaffinity(tid, sizeof(*mask), mask);
    }
    closedir(dir);
}

int lkb_pin_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
    if (pthread_getaffinity_np(pthread_self(), sizeof(lkb_saved_mask), &lkb_saved_mask) != 0) return -1;
    if (CPU_COUNT(&lkb_saved_mask) < 2 || !CPU_ISSET(cpu, &lkb_saved_mask)) return -1; /* nothing to pin apart */
    cpu_set_t only, others = lkb_saved_mask;
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    CPU_CLR(cpu, &others);
    if (pthread_setaffinity_np(pthread_self(), sizeof(only), &only) != 0) return -1;
    set_other_threads((pid_t)syscall(SYS_gettid), &others);
    lkb_saved = 1;
    return 0;
}

void lkb_unpin_thread(void) {
    if (!lkb_saved) return;
    pthread_setaffinity_np(pthread_self(), sizeof(lkb_saved_mask), &lkb_saved_mask);
    set_other_threads((pid_t)syscall(SYS_gettid), &lkb_saved_mask);
    lkb_saved = 0;
}

void lkb_set_timer_slack_ns(unsigned long ns) { prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }
