/*
 * fuzz.h — what the C harnesses share: a cursor over the fuzzer's input bytes, the check that aborts on a
 * mismatch with the reference model, and task payloads that carry a sequence number the harness can verify.
 *
 * Every harness is single-threaded: it decodes one operation sequence from the input, applies each operation
 * to the real structure and to a plain model, and compares the two after every operation. Interleavings with
 * other threads are reproduced through the structures' test-only split operations (a push begun but not
 * finished), which is what makes the runs deterministic and the crashes replayable.
 */
#ifndef LK_FUZZ_H
#define LK_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lk_task.h"

/* Aborts with the failing condition and a formatted explanation; libFuzzer records the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                               \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* The unread rest of the input. Reading past the end yields zeros, so every input decodes to something. */
typedef struct fuzz_input {
    const uint8_t *data;
    size_t size;
    size_t at;
} fuzz_input;

static inline bool fuzz_more(const fuzz_input *in) { return in->at < in->size; }

static inline uint8_t fuzz_u8(fuzz_input *in) { return in->at < in->size ? in->data[in->at++] : 0; }

static inline uint16_t fuzz_u16(fuzz_input *in) {
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint64_t fuzz_u64(fuzz_input *in) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

/*
 * A task whose three words all derive from `seq`: the first is seq itself, the others scramble it, so a task
 * that is torn, stale (a recycled slot read too early) or mixed up with another fails fuzz_task_seq.
 */
static inline lk_task fuzz_task(uint64_t seq) {
    lk_task t;
    t.words[0] = (uintptr_t)seq;
    t.words[1] = (uintptr_t)(seq * 0x9e3779b97f4a7c15ull);
    t.words[2] = (uintptr_t)(~seq ^ 0x5a5a5a5aa5a5a5a5ull);
    return t;
}

/* The sequence number of a task made by fuzz_task; aborts if any word disagrees. */
static inline uint64_t fuzz_task_seq(const lk_task *t) {
    uint64_t seq = (uint64_t)t->words[0];
    lk_task want = fuzz_task(seq);
    for (int i = 1; i < LK_TASK_WORDS; i++)
        FUZZ_CHECK(t->words[i] == want.words[i], "task %llu: word %d is %#llx, expected %#llx",
                   (unsigned long long)seq, i, (unsigned long long)t->words[i],
                   (unsigned long long)want.words[i]);
    return seq;
}

#endif
