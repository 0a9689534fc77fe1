/* scribbler: writes its memory as fast as it can, so that pages change while a checkpoint is being
 * taken — between the scan of written pages made while it runs and the freeze — and every page of
 * any moment can be checked. argv[1] = MiB (default 16). Step n fills one whole page, chosen from n,
 * with n, and keeps `sum`, the sum of every page's first word, up to date; every 64 steps it pauses
 * for a millisecond (tens of thousands of pages a second: in the few milliseconds of a checkpoint,
 * some pages are written again, most not). Every 4096 steps it checks
 * that each page holds one value in every word (no page half old, half new) and that the pages add
 * up to `sum` (no page older or newer than the rest), and prints "tick <k>". READY first.
 * A page of a restored checkpoint copied at another moment than the rest breaks the sum.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "target.h"

#define PAGE 4096
#define WORDS (PAGE / 8)

int main(int argc, char **argv)
{
    size_t pages = (argc > 1 ? (size_t)atol(argv[1]) : 16) * 256;
    uint64_t *heap = aligned_alloc(PAGE, pages * PAGE);
    if (!heap)
        FAIL("no memory");
    for (size_t i = 0; i < pages * WORDS; i++)
        heap[i] = 0;
    uint64_t sum = 0;
    say("READY");
    for (uint64_t n = 1, ticks = 0;; n++) {
        uint64_t *p = heap + (n * 2654435761u % pages) * WORDS;
        sum += n - p[0];
        for (int w = 0; w < WORDS; w++)
            p[w] = n;
        if (n % 64 == 0) {
            struct timespec pause = { 0, 1000 * 1000 };
            nanosleep(&pause, NULL);
        }
        if (n % 4096)
            continue;
        uint64_t total = 0;
        for (size_t page = 0; page < pages; page++) {
            uint64_t *q = heap + page * WORDS;
            for (int w = 1; w < WORDS; w++)
                if (q[w] != q[0])
                    FAIL("after step %lu page %zu word %d holds %lu, word 0 %lu", (unsigned long)n, page, w, (unsigned long)q[w], (unsigned long)q[0]);
            total += q[0];
        }
        if (total != sum)
            FAIL("after step %lu the pages add up to %lu, expected %lu", (unsigned long)n, (unsigned long)total, (unsigned long)sum);
        say("tick %lu", (unsigned long)++ticks);
    }
}
