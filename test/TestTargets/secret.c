/* secret.c - checkpoint/restore target for encrypted images: memory full of a
 * marker string the test chooses (it must never be found in clear in an
 * encrypted image, and is found in one in clear), and a counter.
 *
 * usage: secret <workdir> <marker> [MiB=8]
 * Protocol: READY, then every ~20 ms "tick <n> sum=<checksum>" (the marker is
 * never printed). Page p of the heap holds "<marker>:<p>:<version>|" over and
 * over; each tick checks 4 pages and rewrites them with version n. A copy of
 * the marker lives in .bss too. If <workdir>/stop exists: every page and the
 * checksum checked, "PASS <n>", exit 0. Any mismatch: "FAIL ...", exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "target.h"

#define PAGE 4096u

static char marker[256];                 /* .bss */
static unsigned char *heap;
static size_t npages;
static uint32_t *ver;
static unsigned long ticks;
static uint64_t sum;                     /* of every page's hash, kept as pages change */

static void fill(unsigned char *page, size_t p, uint32_t v) {
    char unit[320];
    int n = snprintf(unit, sizeof unit, "%s:%zu:%u|", marker, p, v);
    size_t at = 0;
    for (; at + n <= PAGE; at += n) memcpy(page + at, unit, n);
    memset(page + at, '.', PAGE - at);
}
static uint64_t hash(const unsigned char *page) {       /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < PAGE; i++) h = (h ^ ((volatile const unsigned char *)page)[i]) * 0x100000001b3ull;
    return h;
}
static void check(size_t p) {
    static unsigned char want[PAGE];
    fill(want, p, ver[p]);
    if (memcmp(want, heap + p * PAGE, PAGE) != 0) FAIL("page %zu (version %u) is not what it was", p, ver[p]);
}
static uint64_t total(void) {
    uint64_t s = 0;
    for (size_t p = 0; p < npages; p++) s += hash(heap + p * PAGE) * (2 * p + 1);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 3) { say("FAIL usage: secret <workdir> <marker> [MiB]"); return 1; }
    char stop_path[4096];
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    snprintf(marker, sizeof marker, "%s", argv[2]);
    size_t mib = argc > 3 ? strtoul(argv[3], NULL, 10) : 8;
    npages = mib * 1024 * 1024 / PAGE;
    heap = malloc(npages * PAGE);
    ver = calloc(npages, sizeof *ver);
    if (!heap || !ver || npages == 0) FAIL("malloc %zu MiB failed", mib);
    for (size_t p = 0; p < npages; p++) fill(heap + p * PAGE, p, 0);
    sum = total();
    say("READY");
    for (unsigned long n = 1;; n++) {
        if (access(stop_path, F_OK) == 0) {
            for (size_t p = 0; p < npages; p++) check(p);
            uint64_t s = total();
            if (s != sum) FAIL("checksum expected %016llx got %016llx", (unsigned long long)sum, (unsigned long long)s);
            if (ticks != n - 1) FAIL("counter expected %lu got %lu", n - 1, ticks);
            say("PASS %lu", n - 1);
            exit(0);
        } else if (errno != ENOENT) FAIL("access(%s): %s", stop_path, strerror(errno));
        if (ticks != n - 1) FAIL("counter expected %lu got %lu", n - 1, ticks);
        for (size_t j = 0; j < 4; j++) {
            size_t p = (n * 7919 + j * 104729) % npages;
            check(p);
            sum -= hash(heap + p * PAGE) * (2 * p + 1);
            ver[p] = (uint32_t)n;
            fill(heap + p * PAGE, p, ver[p]);
            sum += hash(heap + p * PAGE) * (2 * p + 1);
        }
        ticks = n;
        say("tick %lu sum=%016llx", n, (unsigned long long)sum);
        tick_sleep();
    }
}
