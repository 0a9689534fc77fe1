/* chain: memory whose every page says at which tick it was last written, so that the whole state
 * of any moment can be checked: for incremental checkpoints restored from any point of a chain.
 * argv[1] = workdir, argv[2] = heap MiB (default 16). Every page starts with a pattern of its own
 * (so a full checkpoint holds all of it); READY, then each tick n writes n into a few pages chosen
 * from n (and zeroes one), and checks every page against what ticks 1..n must have left there;
 * prints "tick <n>". PASS <n> on <workdir>/stop. The state after tick n depends only on n.
 * Each tick also renews a small "slab" mapping, after checking it holds the previous tick's number:
 * odd ticks replace all of it by a new one at the same address (munmap, mmap), even ticks only its
 * second half (mmap MAP_FIXED over it, which splits the mapping); then every page of it gets the
 * tick's number. Memory that write tracking must not take for the old, unchanged mapping — nor
 * lose the writes to the half that stayed when a scan of the whole stops at the half replaced.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "target.h"

#define PAGE 4096
#define SLAB (16 * PAGE)

static uint64_t *heap;
static size_t pages;

/* The pages tick n writes, and the one it zeroes. */
static size_t written(long n, int k) { return ((size_t)n * 7919u + (size_t)k * 104729u) % pages; }
static size_t zeroed(long n) { return ((size_t)n * 15485863u) % pages; }
static uint64_t initial(size_t p) { return ((uint64_t)1 << 40) + p; }

static uint64_t *slab;

static void replace_slab(long n)
{
    for (size_t w = 0; w < SLAB / 8; w += PAGE / 8)
        if (slab[w] != (uint64_t)(n - 1))
            FAIL("before tick %ld the slab page %zu holds %lu, expected %ld", n, w / (PAGE / 8), (unsigned long)slab[w], n - 1);
    if (n % 2) {
        if (munmap(slab, SLAB) != 0)
            FAIL("munmap: %s", strerror(errno));
        uint64_t *again = mmap(slab, SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (again != slab)
            FAIL("mmap of the slab again at %p: %s", (void *)slab, strerror(errno));
    } else {
        uint64_t *half = slab + SLAB / 2 / 8;
        if (mmap(half, SLAB / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != half)
            FAIL("mmap over the second half of the slab at %p: %s", (void *)half, strerror(errno));
    }
    for (size_t w = 0; w < SLAB / 8; w += PAGE / 8)
        slab[w] = (uint64_t)n;
}

static void tick(long n)
{
    replace_slab(n);
    for (int k = 0; k < 3; k++) {
        uint64_t *p = heap + written(n, k) * (PAGE / 8);
        for (int w = 0; w < PAGE / 8; w += 64)
            p[w] = (uint64_t)n;
    }
    memset(heap + zeroed(n) * (PAGE / 8), 0, PAGE);
}

static void check(long n)
{
    /* Walk back once over all ticks, instead of per page: the last event of each page wins. */
    static uint64_t *want;
    static char *decided;
    if (!want) {
        want = calloc(pages, sizeof *want);
        decided = calloc(pages, 1);
    }
    memset(decided, 0, pages);
    for (size_t p = 0; p < pages; p++)
        want[p] = initial(p);
    size_t left = pages;
    for (long t = n; t >= 1 && left > 0; t--) {
        size_t z = zeroed(t);
        if (!decided[z]) { decided[z] = 1; want[z] = 0; left--; }
        for (int k = 0; k < 3; k++) {
            size_t p = written(t, k);
            if (!decided[p]) { decided[p] = 1; want[p] = (uint64_t)t; left--; }
        }
    }
    for (size_t p = 0; p < pages; p++) {
        uint64_t *q = heap + p * (PAGE / 8);
        for (int w = 0; w < PAGE / 8; w += 64)
            if (q[w] != want[p])
                FAIL("after tick %ld page %zu word %d holds %lu, expected %lu", n, p, w, (unsigned long)q[w], (unsigned long)want[p]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: chain WORKDIR [MiB]");
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 16;
    pages = mib * 256;
    heap = aligned_alloc(PAGE, pages * PAGE);
    slab = mmap(NULL, SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!heap || slab == MAP_FAILED)
        FAIL("no memory");
    for (size_t p = 0; p < pages; p++)
        for (int w = 0; w < PAGE / 8; w++)
            heap[p * (PAGE / 8) + w] = initial(p);
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n - 1);
            say("PASS %ld", n - 1);
            return 0;
        }
        tick(n);
        check(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
