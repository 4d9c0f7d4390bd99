/*
 * lk_affinity.h — CPU affinity of the calling thread, for pinning a loop's thread to a CPU. glibc declares
 * these calls only under _GNU_SOURCE, which Swift's Glibc module does not define, hence the wrappers.
 *
 * A mask is an array of `words` unsigned longs in glibc's cpu_set_t layout: CPU n is bit n % (8 *
 * sizeof(unsigned long)) of word n / (8 * sizeof(unsigned long)). Masks may be larger than cpu_set_t's
 * 1,024 CPUs: a kernel built for more CPUs refuses a smaller mask than its own.
 */
#ifndef LK_AFFINITY_H
#define LK_AFFINITY_H

#include <stddef.h>

/* Stores the calling thread's allowed CPUs in `mask` (`words` words, zeroed first). Returns 0, or -EINVAL
 * when the kernel's mask is larger than `words` words (call again with more), or another -errno. */
int lk_affinity_get(unsigned long *mask, size_t words);

/* Restricts the calling thread to the CPUs set in `mask`. Returns 0 or -errno (-EINVAL: no CPU of the mask
 * exists, is online and is in the process's cpuset). */
int lk_affinity_set(const unsigned long *mask, size_t words);

/* The CPU the calling thread is running on (sched_getcpu), or -errno. A snapshot: the thread may move. */
int lk_affinity_current_cpu(void);

#endif
