/* Benchmark target for migration: touches N MiB of anonymous memory with non-zero data, prints
 * READY, then writes RATE MiB/s for ever, a page at a time, at spread-out places (a different set
 * each round), in 10 ms steps. writer N RATE. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    size_t rate = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
    size_t len = mib << 20, pages = len / 4096;
    uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    printf("READY\n");
    fflush(stdout);
    size_t per_step = (rate << 20) / 4096 / 100; /* pages per 10 ms */
    size_t next = 0;
    struct timespec step = { 0, 10 * 1000 * 1000 };
    for (;;) {
        for (size_t i = 0; i < per_step; i++) {
            next = (next + 7919) % pages; /* a prime stride: spread over the range */
            p[next * 512] ^= x++;
        }
        nanosleep(&step, NULL);
    }
}
