/* splitslab: a 32-page "slab" mapping whose every page holds the round's number; READY and
 * "ROUND 1" once it is filled. SIGUSR1: the next round writes its number into the first half and
 * maps fresh memory over the second half (mmap MAP_FIXED, which splits the mapping), filled with it
 * too; "ROUND <v>". SIGUSR2: checks every page holds the round's number: "CHECK <v> OK", or FAIL.
 * Write tracking that scans the whole slab stops at the half replaced: the writes to the half that
 * stayed must not be lost with it. argv[1] = workdir (unused).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "target.h"

#define PAGE 4096
#define SLAB (32 * PAGE)

static volatile sig_atomic_t next_round, check;

static void on_usr1(int sig) { (void)sig; next_round = 1; }
static void on_usr2(int sig) { (void)sig; check = 1; }

static void fill(uint64_t *from, size_t bytes, uint64_t v)
{
    for (size_t w = 0; w < bytes / 8; w += PAGE / 8)
        from[w] = v;
}

int main(void)
{
    uint64_t *slab = mmap(NULL, SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED)
        FAIL("no memory");
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    uint64_t v = 1;
    fill(slab, SLAB, v);
    say("READY");
    say("ROUND %lu", (unsigned long)v);
    for (;;) {
        if (next_round) {
            next_round = 0;
            v++;
            fill(slab, SLAB / 2, v);
            uint64_t *half = slab + SLAB / 2 / 8;
            if (mmap(half, SLAB / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != half)
                FAIL("mmap over the second half of the slab: %s", strerror(errno));
            fill(half, SLAB / 2, v);
            say("ROUND %lu", (unsigned long)v);
        }
        if (check) {
            check = 0;
            for (size_t w = 0; w < SLAB / 8; w += PAGE / 8)
                if (slab[w] != v)
                    FAIL("slab page %zu holds %lu, expected %lu", w / (PAGE / 8), (unsigned long)slab[w], (unsigned long)v);
            say("CHECK %lu OK", (unsigned long)v);
        }
        tick_sleep();
    }
}
