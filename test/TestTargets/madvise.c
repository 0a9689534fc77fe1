/* madvise: anonymous mappings whose kernel flags come from madvise, mlock and mlock2. argv[1] =
 * workdir. Protocol as in README.md. One PROT_NONE reservation holds a region per flag, each mapped
 * MAP_FIXED inside it with unmapped gaps between (so no two can merge), the reservation's rest
 * unmapped: MADV_DONTFORK (dc), MADV_DONTDUMP (dd), MADV_HUGEPAGE (hg; 2 MiB, 2 MiB-aligned, so it
 * may get a huge page), MADV_NOHUGEPAGE (nh), MADV_WIPEONFORK (wf), MADV_MERGEABLE (mg; left plain
 * with a "NOTE" line if the kernel refuses it), MADV_SEQUENTIAL (sr), MADV_RANDOM (rr), mlock (lo)
 * and mlock2(MLOCK_ONFAULT) (lo lf; only its first half is ever touched). Every region holds its own
 * data. Prints "REGION <name> <start>-<end> <VmFlags>" for each at setup.
 * Each tick: /proc/self/smaps must show, inside the reservation, exactly these regions, each with
 * the header line (range, perms) and VmFlags line it had at setup, and every region's data must be
 * intact; mincore must show the mlock region all resident and the MLOCK_ONFAULT one resident in its
 * first half only (a restore that faults it all in, or plain-mlocks it, fails).
 * Final check: a forked child (PDEATHSIG) checks that the DONTFORK region is not mapped in it
 * (mincore gives ENOMEM), that the WIPEONFORK region reads zeros and that the others hold their data;
 * the parent checks the child's exit status.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "target.h"

#define PAGE 4096UL
#define REGION (16 * PAGE)
#define HUGE (2UL << 20)
#define SLOT (4UL << 20) /* each region starts a 4 MiB slot; the rest of the slot is a gap */

enum kind { BY_MADVISE, BY_MLOCK, BY_MLOCK2 };
static struct region {
    const char *name;
    enum kind kind;
    int advice;
    size_t len;
    char *start;
    int skipped;
    char header[256], vmflags[256];
} R[] = {
    { .name = "dontfork", .advice = MADV_DONTFORK, .len = REGION },
    { .name = "dontdump", .advice = MADV_DONTDUMP, .len = REGION },
    { .name = "hugepage", .advice = MADV_HUGEPAGE, .len = HUGE },
    { .name = "nohugepage", .advice = MADV_NOHUGEPAGE, .len = REGION },
    { .name = "wipeonfork", .advice = MADV_WIPEONFORK, .len = REGION },
    { .name = "mergeable", .advice = MADV_MERGEABLE, .len = REGION },
    { .name = "sequential", .advice = MADV_SEQUENTIAL, .len = REGION },
    { .name = "random", .advice = MADV_RANDOM, .len = REGION },
    { .name = "mlock", .kind = BY_MLOCK, .len = REGION },
    { .name = "onfault", .kind = BY_MLOCK2, .len = REGION },
};
#define NR (int)(sizeof R / sizeof *R)
enum { DONTFORK = 0, WIPEONFORK = 4, MERGEABLE = 5, LOCKED = 8, ONFAULT = 9 };
static char *base;
static size_t base_len;
static char smaps[1 << 20];

/* the bytes of region r that are written (all but the ONFAULT region's second half) */
static size_t data_len(int r) { return r == ONFAULT ? R[r].len / 2 : R[r].len; }

static uint64_t word(int r, size_t i) { return ((uint64_t)(r + 1) << 56) ^ (i * 0x9E3779B97F4A7C15ULL); }

static void fill(int r)
{
    uint64_t *w = (uint64_t *)R[r].start;
    for (size_t i = 0; i < data_len(r) / 8; i++)
        w[i] = word(r, i);
}

/* 0 if region r holds its data, else the index of the first bad word + 1 */
static size_t bad_word(int r, int zeros)
{
    const uint64_t *w = (const uint64_t *)R[r].start;
    for (size_t i = 0; i < data_len(r) / 8; i++)
        if (w[i] != (zeros ? 0 : word(r, i)))
            return i + 1;
    return 0;
}

static void read_smaps(void)
{
    int f = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (f < 0)
        FAIL("open /proc/self/smaps: %s", strerror(errno));
    size_t len = 0;
    ssize_t got;
    while ((got = read(f, smaps + len, sizeof smaps - 1 - len)) > 0)
        len += (size_t)got;
    close(f);
    if (got < 0 || len >= sizeof smaps - 1)
        FAIL("reading /proc/self/smaps: %s (%zu bytes)", got < 0 ? strerror(errno) : "too big", len);
    smaps[len] = 0;
}

/* Walks smaps: for every mapping inside the reservation, finds its region (by start address) and
 * stores its header and VmFlags lines in hdr/flg; returns how many mappings lie in the reservation. */
static int scan(char (*hdr)[256], char (*flg)[256])
{
    read_smaps();
    int inside = 0, cur = -1;
    for (char *line = smaps, *next; *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : line + strlen(line);
        size_t len = (size_t)(next - line) - (nl ? 1 : 0);
        unsigned long s, e;
        char c;
        if (sscanf(line, "%lx-%lx %c", &s, &e, &c) == 3 && line[0] != 'V') {
            cur = -1;
            if (s >= (unsigned long)base && s < (unsigned long)base + base_len) {
                inside++;
                for (int r = 0; r < NR; r++)
                    if ((char *)s == R[r].start)
                        cur = r;
                if (cur >= 0)
                    snprintf(hdr[cur], 256, "%.*s", (int)len, line);
            }
        } else if (cur >= 0 && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flg[cur], 256, "%.*s", (int)len, line);
        }
    }
    return inside;
}

static int resident(const char *p, size_t pages, unsigned char *vec)
{
    if (mincore((void *)p, pages * PAGE, vec) != 0)
        return -errno;
    int n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

static void check(long n)
{
    static char hdr[NR][256], flg[NR][256];
    memset(hdr, 0, sizeof hdr);
    memset(flg, 0, sizeof flg);
    int inside = scan(hdr, flg);
    for (int r = 0; r < NR; r++) {
        if (strcmp(hdr[r], R[r].header) != 0)
            FAIL("tick %ld: region %s: smaps header '%s', was '%s'", n, R[r].name, hdr[r], R[r].header);
        if (strcmp(flg[r], R[r].vmflags) != 0)
            FAIL("tick %ld: region %s: '%s', was '%s'", n, R[r].name, flg[r], R[r].vmflags);
        size_t bad = bad_word(r, 0);
        if (bad)
            FAIL("tick %ld: region %s: word %zu is 0x%llx, expected 0x%llx", n, R[r].name, bad - 1,
                 (unsigned long long)((uint64_t *)R[r].start)[bad - 1], (unsigned long long)word(r, bad - 1));
    }
    if (inside != NR)
        FAIL("tick %ld: %d mappings inside the reservation, expected %d (the gaps must stay unmapped)", n, inside, NR);
    unsigned char vec[16];
    int locked = resident(R[LOCKED].start, 16, vec);
    int first = resident(R[ONFAULT].start, 8, vec), second = resident(R[ONFAULT].start + 8 * PAGE, 8, vec);
    if (locked != 16 || first != 8 || second != 0)
        FAIL("tick %ld: resident pages: mlock %d/16 (expected 16), onfault first half %d/8 (expected 8), second half "
             "%d/8 (expected 0)", n, locked, first, second);
}

static void child_checks(void)
{
    unsigned char vec[16];
    errno = 0;
    if (mincore(R[DONTFORK].start, R[DONTFORK].len, vec) != -1 || errno != ENOMEM)
        FAIL("child: the DONTFORK region is mapped in the child (mincore: %s)", strerror(errno));
    size_t bad = bad_word(WIPEONFORK, 1);
    if (bad)
        FAIL("child: the WIPEONFORK region's word %zu is 0x%llx, expected 0", bad - 1,
             (unsigned long long)((uint64_t *)R[WIPEONFORK].start)[bad - 1]);
    for (int r = 0; r < NR; r++)
        if (r != DONTFORK && r != WIPEONFORK && (bad = bad_word(r, 0)))
            FAIL("child: region %s word %zu differs", R[r].name, bad - 1);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: madvise WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);

    base_len = (NR + 1) * SLOT;
    base = mmap(NULL, base_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        FAIL("reserving %zu bytes: %s", base_len, strerror(errno));
    char *slot0 = (char *)(((uintptr_t)base + SLOT - 1) & ~(SLOT - 1)); /* 4 MiB aligned: the huge one is 2 MiB aligned */
    for (int r = 0; r < NR; r++) {
        R[r].start = slot0 + (size_t)r * SLOT;
        if (mmap(R[r].start, R[r].len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != R[r].start)
            FAIL("mmap region %s: %s", R[r].name, strerror(errno));
        int res = 0;
        if (R[r].kind == BY_MADVISE)
            res = madvise(R[r].start, R[r].len, R[r].advice);
        else if (R[r].kind == BY_MLOCK)
            res = mlock(R[r].start, R[r].len);
        else
            res = mlock2(R[r].start, R[r].len, MLOCK_ONFAULT);
        if (res != 0 && r == MERGEABLE && errno == EINVAL) {
            R[r].skipped = 1;
            say("NOTE MADV_MERGEABLE refused (%s): region mergeable left plain", strerror(errno));
        } else if (res != 0) {
            FAIL("advising region %s: %s", R[r].name, strerror(errno));
        }
        fill(r);
    }
    /* unmap all but the regions: the gaps between them and the reservation's ends */
    char *p = base;
    for (int r = 0; r <= NR; r++) {
        char *end = r < NR ? R[r].start : base + base_len;
        if (end > p && munmap(p, (size_t)(end - p)) != 0)
            FAIL("munmap gap: %s", strerror(errno));
        if (r < NR)
            p = R[r].start + R[r].len;
    }
    static char hdr[NR][256], flg[NR][256];
    int inside = scan(hdr, flg);
    if (inside != NR)
        FAIL("setup: %d mappings in the reservation, expected %d", inside, NR);
    static const char *want[NR] = { " dc", " dd", " hg", " nh", " wf", " mg", " sr", " rr", " lo", " lf" };
    for (int r = 0; r < NR; r++) {
        memcpy(R[r].header, hdr[r], 256);
        memcpy(R[r].vmflags, flg[r], 256);
        say("REGION %s %p-%p %s", R[r].name, R[r].start, R[r].start + R[r].len, R[r].vmflags + 9);
        if (!R[r].skipped && !strstr(R[r].vmflags, want[r]))
            FAIL("setup: region %s lacks '%s' in its VmFlags", R[r].name, want[r] + 1);
    }
    check(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            pid_t parent = getpid(), c = fork();
            if (c < 0)
                FAIL("fork: %s", strerror(errno));
            if (c == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                    _exit(2);
                child_checks();
            }
            int st;
            if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("the forked child ended with status 0x%x", st);
            check(n);
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
