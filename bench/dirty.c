/* Benchmark target for incremental checkpoints: touches N MiB of anonymous memory with non-zero
 * data, prints READY, then on SIGUSR1 writes to 1 % of its pages and on SIGUSR2 to 10 % (pages
 * spread over the whole range, a different set each time), printing "DIRTIED <round>" after each.
 * dirty N mixed: every other page holds text instead of random bits (memory that compresses about
 * 2:1 overall, for the compression figures). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t request;

static void on_signal(int sig) { request = sig == SIGUSR1 ? 1 : 10; }

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 2048;
    size_t len = mib << 20, pages = len / 4096;
    uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    int mixed = argc > 2 && strcmp(argv[2], "mixed") == 0;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    for (size_t page = 0; mixed && page < pages; page += 2) {
        char *text = (char *)(p + page * 512);
        for (int line = 0; line < 64; line++)
            snprintf(text + line * 64, 64, "page %08zu line %02d: %016llx brown fox", page, line, (unsigned long long)p[page * 512 + line]);
    }
    signal(SIGUSR1, on_signal);
    signal(SIGUSR2, on_signal);
    printf("READY\n");
    fflush(stdout);
    for (long round = 1;; ) {
        if (!request) {
            usleep(1000);
            continue;
        }
        size_t n = pages * (size_t)request / 100;
        request = 0;
        /* n distinct pages: a stride coprime with the page count, from a start that moves each round. */
        size_t stride = 7919, at = (size_t)round * 104729 % pages;
        for (size_t i = 0; i < n; i++) {
            at = (at + stride) % pages;
            p[at * 512 + (i & 511)] ^= (uint64_t)round;
        }
        printf("DIRTIED %ld\n", round++);
        fflush(stdout);
    }
}
