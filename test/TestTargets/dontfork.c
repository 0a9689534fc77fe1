/* dontfork: memory marked MADV_DONTFORK during a lazy restore, while its pages are still missing.
 * argv[1] = workdir. Protocol as in README.md. Setup: region A (64 MiB) and, above it (the pager
 * pushes in address order, so X comes last), region X (4 MiB), each page with
 * a pattern. At stop (the test makes the stop file before a lazy restore): X is marked
 * MADV_DONTFORK, then a child is forked that holds no X; it sleeps 10 s and exits 0. No event tells
 * the pager the child has no X: it must give those pages up by itself, long before the child ends.
 * The parent checks all of A and X while the child sleeps, waits for it, and prints PASS.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "target.h"

#define PAGE 4096UL
#define A_LEN (64UL << 20)
#define X_LEN (4UL << 20)

static uint8_t *A, *X;

static uint64_t word(uint64_t region, uint64_t page, uint64_t i) {
    uint64_t x = (region << 56) ^ (page << 20) ^ i ^ 0x9e3779b97f4a7c15ULL;
    x ^= x >> 31; x *= 0xbf58476d1ce4e5b9ULL; x ^= x >> 29;
    return x;
}

static void fill(uint8_t *p, uint64_t region, size_t len) {
    for (size_t page = 0; page < len / PAGE; page++)
        for (uint64_t i = 0; i < PAGE / 8; i++) ((uint64_t *)(p + page * PAGE))[i] = word(region, page, i);
}

/* the first page of p not holding its pattern, or -1 */
static long first_bad(const uint8_t *p, uint64_t region, size_t len) {
    for (size_t page = 0; page < len / PAGE; page++)
        for (uint64_t i = 0; i < PAGE / 8; i++)
            if (((const uint64_t *)(p + page * PAGE))[i] != word(region, page, i)) return (long)page;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2) FAIL("usage: dontfork WORKDIR");
    /* mapped top-down: X first, so that it is above A */
    X = mmap(NULL, X_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    A = mmap(NULL, A_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (A == MAP_FAILED || X == MAP_FAILED) FAIL("mmap: %s", strerror(errno));
    if (X < A) FAIL("X is mapped below A");
    fill(A, 'A', A_LEN);
    fill(X, 'X', X_LEN);
    say("READY");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    for (int n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            if (madvise(X, X_LEN, MADV_DONTFORK)) FAIL("madvise(MADV_DONTFORK): %s", strerror(errno));
            pid_t child = fork();
            if (child < 0) FAIL("fork: %s", strerror(errno));
            if (child == 0) {
                sleep(10);
                _exit(0);
            }
            long bad = first_bad(A, 'A', A_LEN);
            if (bad >= 0) FAIL("A page %ld wrong", bad);
            bad = first_bad(X, 'X', X_LEN);
            if (bad >= 0) FAIL("X page %ld wrong", bad);
            int status;
            if (waitpid(child, &status, 0) != child) FAIL("waitpid: %s", strerror(errno));
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("the child ended with status %d", status);
            say("PASS %d", n - 1);
            return 0;
        }
        say("tick %d", n);
        tick_sleep();
    }
}
