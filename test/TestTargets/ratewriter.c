/* Migration target: N MiB of anonymous memory, each page filled from (its index, its generation),
 * then RATE MiB/s of pages rewritten with their next generation, a page at a time at spread-out
 * places, in 10 ms steps, until WORKDIR/stop exists; then every page is checked against its
 * generation: PASS PAGES WRITES or FAIL. Prints READY once filled, and "tick N" every second.
 * ratewriter WORKDIR MIB RATE. Used by the migration tests (pre-copy under a steady write rate) and
 * by bench/run's migration section. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static void fill(uint64_t *page, size_t index, uint32_t gen)
{
    uint64_t x = 0x9e3779b97f4a7c15ull ^ ((uint64_t)index << 20) ^ gen;
    for (size_t i = 0; i < PAGE / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        page[i] = x;
    }
}

static int same(const uint64_t *page, size_t index, uint32_t gen)
{
    uint64_t x = 0x9e3779b97f4a7c15ull ^ ((uint64_t)index << 20) ^ gen;
    for (size_t i = 0; i < PAGE / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (page[i] != x) return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "ratewriter WORKDIR MIB RATE\n"); return 2; }
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    size_t mib = strtoul(argv[2], NULL, 10), rate = strtoul(argv[3], NULL, 10);
    size_t pages = (mib << 20) / PAGE;
    uint8_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    uint32_t *gen = calloc(pages, sizeof *gen);
    if (mem == MAP_FAILED || !gen) { printf("FAIL no memory\n"); return 1; }
    for (size_t p = 0; p < pages; p++) fill((uint64_t *)(mem + p * PAGE), p, 0);
    printf("READY\n");
    fflush(stdout);
    size_t per_step = (rate << 20) / PAGE / 100, next = 0, writes = 0;
    struct timespec step = { 0, 10 * 1000 * 1000 };
    for (long n = 0; access(stop, F_OK) != 0; n++) {
        for (size_t i = 0; i < per_step; i++) {
            next = (next + 7919) % pages;
            fill((uint64_t *)(mem + next * PAGE), next, ++gen[next]);
            writes++;
        }
        if (n % 100 == 0) { printf("tick %ld\n", n / 100); fflush(stdout); }
        nanosleep(&step, NULL);
    }
    for (size_t p = 0; p < pages; p++)
        if (!same((uint64_t *)(mem + p * PAGE), p, gen[p])) { printf("FAIL page %zu is not generation %u\n", p, gen[p]); return 1; }
    printf("PASS %zu %zu\n", pages, writes);
    return 0;
}
