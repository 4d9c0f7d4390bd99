/* affinity.c — pin the calling thread to one CPU and back (the latency workloads' producer), and its timer slack. */
#include "lkb.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

static _Thread_local cpu_set_t lkb_saved_mask;
static _Thread_local int lkb_saved = 0;

int lkb_pin_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
    if (pthread_getaffinity_np(pthread_self(), sizeof(lkb_saved_mask), &lkb_saved_mask) != 0) return -1;
    if (CPU_COUNT(&lkb_saved_mask) < 2) return -1; /* one CPU: nothing to pin apart */
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    if (pthread_setaffinity_np(pthread_self(), sizeof(only), &only) != 0) return -1;
    lkb_saved = 1;
    return 0;
}

void lkb_unpin_thread(void) {
    if (!lkb_saved) return;
    pthread_setaffinity_np(pthread_self(), sizeof(lkb_saved_mask), &lkb_saved_mask);
    lkb_saved = 0;
}

void lkb_set_timer_slack_ns(unsigned long ns) { prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }
