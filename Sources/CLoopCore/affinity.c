/* affinity.c — CPU affinity of the calling thread (see lk_affinity.h). */
#include "lk_affinity.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

int lk_affinity_get(unsigned long *mask, size_t words) {
    memset(mask, 0, words * sizeof *mask);
    /* Thread id 0: the calling thread. glibc zeroes what the kernel does not fill. */
    if (sched_getaffinity(0, words * sizeof *mask, (cpu_set_t *)mask) != 0) return -errno;
    return 0;
}

int lk_affinity_set(const unsigned long *mask, size_t words) {
    /* Returns an error number rather than setting errno. */
    return -pthread_setaffinity_np(pthread_self(), words * sizeof *mask, (const cpu_set_t *)mask);
}

int lk_affinity_current_cpu(void) {
    int cpu = sched_getcpu();
    return cpu < 0 ? -errno : cpu;
}
