/* sysvsplit: System V shared memory attached in pieces. argv[1] = workdir. Protocol as in README.md.
 * A segment (IPC_PRIVATE, 16 pages, mode 0600) is attached read-write at A1, and its page 8 is then
 * mprotect'ed PROT_READ, so the attachment is three VMAs (rw-s, r--s, rw-s). It is attached a second
 * time, SHM_RDONLY, at A2, and A2's first page is munmapped (a partly unmapped attachment, 15 pages
 * left). Prints "SHMID <id>" and the /proc/self/maps lines of both at setup.
 * Each tick n: a word written into one page of A1 (pages 1..15 but 8, in turn) must read back
 * through A2, and every page's word (the last written there, kept in the program's memory) and page
 * 8's pattern read the same through both; /proc/self/maps lines inside both ranges are identical to
 * setup (addresses, perms, offsets, the segment's inode = shmid, "/SYSV00000000 (deleted)"), so the
 * r--s page is still read-only without faulting on purpose; IPC_STAT's shm_nattch, shm_segsz and mode
 * equal setup. The final check removes the segment (IPC_RMID), as does a FAIL (atexit); a killed run
 * leaves it behind: remove it by the id printed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include "target.h"

#define PAGE 4096UL
#define PAGES 16
#define RO 8
static int id;
static char *a1, *a2;
static char maps0[8][256];
static int nmaps0;
static struct shmid_ds ds0;
static uint64_t last[PAGES]; /* word 0 of each page */

static void remove_segment(void) { shmctl(id, IPC_RMID, NULL); } /* also on FAIL (exit) */

static uint64_t pattern(size_t i) { return 0xA5A5000000000000ULL + i * 0x10001ULL; }

static int maps_lines(char (*out)[256], int max)
{
    static char buf[1 << 17];
    int f = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t got;
    if (f < 0)
        FAIL("open /proc/self/maps: %s", strerror(errno));
    while ((got = read(f, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(f);
    buf[len] = 0;
    int n = 0;
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 &&
            ((s >= (unsigned long)a1 && s < (unsigned long)a1 + PAGES * PAGE) ||
             (s >= (unsigned long)a2 && s < (unsigned long)a2 + PAGES * PAGE))) {
            if (n == max)
                FAIL("more than %d maps lines in the attachments", max);
            snprintf(out[n++], 256, "%.*s", (int)l, line);
        }
        line += l + (nl ? 1 : 0);
    }
    return n;
}

static void check(long n)
{
    char m[8][256];
    int k = maps_lines(m, 8);
    if (k != nmaps0)
        FAIL("tick %ld: %d maps lines in the attachments, expected %d", n, k, nmaps0);
    for (int i = 0; i < k; i++)
        if (strcmp(m[i], maps0[i]) != 0)
            FAIL("tick %ld: maps line '%s', was '%s'", n, m[i], maps0[i]);
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) != 0)
        FAIL("tick %ld: IPC_STAT of %d: %s", n, id, strerror(errno));
    if (ds.shm_nattch != ds0.shm_nattch || ds.shm_segsz != ds0.shm_segsz || ds.shm_perm.mode != ds0.shm_perm.mode)
        FAIL("tick %ld: nattch %lu size %zu mode 0%o, were %lu %zu 0%o", n, (unsigned long)ds.shm_nattch, ds.shm_segsz,
             ds.shm_perm.mode, (unsigned long)ds0.shm_nattch, ds0.shm_segsz, ds0.shm_perm.mode);
    for (int p = 0; p < PAGES; p++) {
        uint64_t v1 = *(volatile uint64_t *)(a1 + p * PAGE);
        if (v1 != last[p])
            FAIL("tick %ld: page %d through A1 holds %llu, expected %llu", n, p, (unsigned long long)v1,
                 (unsigned long long)last[p]);
        if (p > 0) {
            uint64_t v2 = *(volatile uint64_t *)(a2 + p * PAGE);
            if (v2 != last[p])
                FAIL("tick %ld: page %d through A2 holds %llu, A1 %llu", n, p, (unsigned long long)v2, (unsigned long long)v1);
        }
    }
    const uint64_t *r1 = (const uint64_t *)(a1 + RO * PAGE), *r2 = (const uint64_t *)(a2 + RO * PAGE);
    for (size_t i = 1; i < PAGE / 8; i++)
        if (r1[i] != pattern(i) || r2[i] != pattern(i))
            FAIL("tick %ld: the read-only page's word %zu is %llx / %llx, expected %llx", n, i, (unsigned long long)r1[i],
                 (unsigned long long)r2[i], (unsigned long long)pattern(i));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: sysvsplit WORKDIR");
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
        *(uint64_t *)(a1 + p * PAGE) = last[p] = 1000 + (uint64_t)p;
    for (size_t i = 1; i < PAGE / 8; i++)
        ((uint64_t *)(a1 + RO * PAGE))[i] = pattern(i);
    if (mprotect(a1 + RO * PAGE, PAGE, PROT_READ) != 0)
        FAIL("mprotect: %s", strerror(errno));
    a2 = shmat(id, NULL, SHM_RDONLY);
    if (a2 == (void *)-1)
        FAIL("shmat SHM_RDONLY: %s", strerror(errno));
    if (munmap(a2, PAGE) != 0)
        FAIL("munmap A2's first page: %s", strerror(errno));
    if (shmctl(id, IPC_STAT, &ds0) != 0)
        FAIL("IPC_STAT: %s", strerror(errno));
    nmaps0 = maps_lines(maps0, 8);
    say("ATTACH A1=%p A2=%p nattch=%lu", a1, a2, (unsigned long)ds0.shm_nattch);
    for (int i = 0; i < nmaps0; i++)
        say("MAPS %s", maps0[i]);
    if (nmaps0 != 4)
        FAIL("setup: %d maps lines in the attachments, expected 4", nmaps0);
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
        int p = (int)(n % 14) + 1;
        if (p >= RO)
            p++;
        *(volatile uint64_t *)(a1 + p * PAGE) = last[p] = (uint64_t)n;
        if (*(volatile uint64_t *)(a2 + p * PAGE) != (uint64_t)n)
            FAIL("tick %ld: %ld written into page %d through A1 is not seen through A2", n, n, p);
        say("tick %ld", n);
        tick_sleep();
    }
}
