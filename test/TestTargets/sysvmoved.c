/* sysvmoved: System V attachments whose place cannot simply be attached again. argv[1] = workdir.
 * Protocol as in README.md. A segment (IPC_PRIVATE, 8 pages, 0600) is attached read-write at A1;
 * its page 1 is moved elsewhere with mremap (a piece of the attachment away from it: same offset,
 * another start), its page 0 is unmapped, and private anonymous memory is mapped into page 1's
 * place: a restore that makes the attachment again with one shmat at A1 finds that place taken.
 * Pages 4-5 are mprotect'ed PROT_READ and back: the rest of the attachment stays three rw-s
 * mappings (System V mappings never merge again), each counted in shm_nattch. A second attachment
 * (SHM_RDONLY) is whole; it must refuse mprotect(PROT_WRITE) (it is read-only for good).
 * Prints "SHMID <id>" and the /proc/self/maps lines of all this at setup.
 * Each tick: the maps lines equal setup (addresses, perms, offsets), shm_nattch too, every page
 * holds its word (written through A1, read through A2 and the moved page), the anonymous page its
 * own, and A2 refuses PROT_WRITE. IPC_RMID at the end and on FAIL (atexit).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include "target.h"

#define PAGE 4096UL
#define PAGES 8
static int id;
static char *a1, *a2, *moved;
static char maps0[16][256];
static int nmaps0;
static struct shmid_ds ds0;
static uint64_t last[PAGES];

static void remove_segment(void) { shmctl(id, IPC_RMID, NULL); }

static int inside(unsigned long s)
{
    return (s >= (unsigned long)a1 && s < (unsigned long)a1 + PAGES * PAGE) ||
           (s >= (unsigned long)a2 && s < (unsigned long)a2 + PAGES * PAGE) || s == (unsigned long)moved;
}

static int maps_lines(char (*out)[256], int max)
{
    static char buf[1 << 17];
    int f = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (f < 0)
        FAIL("open /proc/self/maps: %s", strerror(errno));
    size_t len = 0;
    ssize_t got;
    while ((got = read(f, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(f);
    buf[len] = 0;
    int n = 0;
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && inside(s)) {
            if (n == max)
                FAIL("more than %d maps lines", max);
            snprintf(out[n++], 256, "%.*s", (int)l, line);
        }
        line += l + (nl ? 1 : 0);
    }
    return n;
}

static void check(long n)
{
    char m[16][256];
    int k = maps_lines(m, 16);
    for (int i = 0; i < k && i < nmaps0; i++)
        if (strcmp(m[i], maps0[i]) != 0)
            FAIL("tick %ld: maps line '%s', was '%s'", n, m[i], maps0[i]);
    if (k != nmaps0)
        FAIL("tick %ld: %d maps lines, expected %d (first extra or missing: '%s')", n, k, nmaps0, k > nmaps0 ? m[nmaps0] : maps0[k]);
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) != 0)
        FAIL("tick %ld: IPC_STAT of %d: %s", n, id, strerror(errno));
    if (ds.shm_nattch != ds0.shm_nattch)
        FAIL("tick %ld: nattch %lu, was %lu", n, (unsigned long)ds.shm_nattch, (unsigned long)ds0.shm_nattch);
    for (int p = 2; p < PAGES; p++) {
        uint64_t v1 = *(volatile uint64_t *)(a1 + p * PAGE), v2 = *(volatile uint64_t *)(a2 + p * PAGE);
        if (v1 != last[p] || v2 != last[p])
            FAIL("tick %ld: page %d holds %llu through A1 and %llu through A2, expected %llu", n, p, (unsigned long long)v1,
                 (unsigned long long)v2, (unsigned long long)last[p]);
    }
    if (*(volatile uint64_t *)moved != last[1] || *(volatile uint64_t *)(a2 + PAGE) != last[1])
        FAIL("tick %ld: the moved page holds %llu (A2: %llu), expected %llu", n, (unsigned long long)*(uint64_t *)moved,
             (unsigned long long)*(uint64_t *)(a2 + PAGE), (unsigned long long)last[1]);
    if (*(volatile uint64_t *)(a1 + PAGE) != 0xA11CE)
        FAIL("tick %ld: the anonymous page in the attachment's place holds %llx", n, (unsigned long long)*(uint64_t *)(a1 + PAGE));
    if (mprotect(a2, PAGE, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
        FAIL("tick %ld: mprotect(PROT_WRITE) of the SHM_RDONLY attachment: %s", n, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: sysvmoved WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    id = shmget(IPC_PRIVATE, PAGES * PAGE, IPC_CREAT | 0600);
    if (id < 0)
        FAIL("shmget: %s", strerror(errno));
    say("SHMID %d", id);
    atexit(remove_segment);
    a1 = shmat(id, NULL, 0);
    if (a1 == (void *)-1)
        FAIL("shmat: %s", strerror(errno));
    for (int p = 0; p < PAGES; p++)
        *(uint64_t *)(a1 + p * PAGE) = last[p] = 100 + (uint64_t)p;
    moved = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (moved == MAP_FAILED || mremap(a1 + PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, moved) != moved)
        FAIL("mremap of page 1: %s", strerror(errno));
    if (munmap(a1, PAGE) != 0)
        FAIL("munmap of page 0: %s", strerror(errno));
    if (mmap(a1 + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a1 + PAGE)
        FAIL("mmap into page 1's place: %s", strerror(errno));
    *(uint64_t *)(a1 + PAGE) = 0xA11CE;
    if (mprotect(a1 + 4 * PAGE, 2 * PAGE, PROT_READ) != 0 || mprotect(a1 + 4 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE) != 0)
        FAIL("mprotect: %s", strerror(errno));
    a2 = shmat(id, NULL, SHM_RDONLY);
    if (a2 == (void *)-1)
        FAIL("shmat SHM_RDONLY: %s", strerror(errno));
    if (shmctl(id, IPC_STAT, &ds0) != 0)
        FAIL("IPC_STAT: %s", strerror(errno));
    nmaps0 = maps_lines(maps0, 16);
    for (int i = 0; i < nmaps0; i++)
        say("MAPS %s", maps0[i]);
    say("ATTACH A1=%p A2=%p moved=%p nattch=%lu", a1, a2, moved, (unsigned long)ds0.shm_nattch);
    if (nmaps0 != 6 || ds0.shm_nattch != 5)
        FAIL("setup: %d maps lines and nattch %lu, expected 6 and 5", nmaps0, (unsigned long)ds0.shm_nattch);
    check(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            if (shmctl(id, IPC_RMID, NULL) != 0)
                FAIL("IPC_RMID: %s", strerror(errno));
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        int p = 1 + (int)(n % (PAGES - 1)); /* 1..7: page 1 through the moved piece */
        *(volatile uint64_t *)(p == 1 ? moved : a1 + p * PAGE) = last[p] = (uint64_t)n;
        say("tick %ld", n);
        tick_sleep();
    }
}
