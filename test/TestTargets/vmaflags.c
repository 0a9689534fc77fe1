/* vmaflags: mappings whose kernel flags come from how they were made, not from madvise: argv[1] =
 * workdir. Protocol as in README.md. Like madvise.c, one PROT_NONE reservation holds a region per
 * case, each mapped MAP_FIXED in a 4 MiB slot of its own (gaps between, so none can merge):
 *   noreserve  MAP_NORESERVE (nr)              droppable  MAP_DROPPABLE (dp; 6.11)
 *   growsdown  MAP_GROWSDOWN (gd)              sealed     r--, then mseal (sl; 6.10)
 *   guard      pages 4-5 made guard pages with MADV_GUARD_INSTALL (gu; 6.13)
 *   unguarded  a guard page installed and removed again: "gu" stays, no guard page
 *   sharedrw   <wd>/rw.dat opened O_RDWR, mapped MAP_SHARED PROT_READ (mw: may be made writable)
 *   sharedro   <wd>/ro.dat opened O_RDONLY, mapped MAP_SHARED PROT_READ (no mw: may not)
 *   privmemfd  a memfd (fd kept) mapped MAP_PRIVATE rw, its page 3 written through the mapping: the
 *              mapping stays private (no sh), page 3 its own, the memfd's page 3 unchanged
 * A case the kernel refuses (EINVAL, ENOSYS: older kernels) is left out with a "NOTE" line.
 * Prints "REGION <name> <start>-<end> <VmFlags>" for each at setup.
 * Each tick: /proc/self/smaps shows, inside the reservation, exactly these regions, each with the
 * header line and VmFlags it had at setup; the data of each is intact (but droppable's, which the
 * kernel may drop, and the guard pages); the guard pages are guard pages (pagemap bit 58) and touching
 * one faults, no other page is one; munmap and mprotect of the sealed region fail with EPERM;
 * mprotect(PROT_WRITE) of sharedro fails with EACCES. At the end sharedrw is made writable (it must
 * be allowed), written, and made read-only again.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include "target.h"

#define PAGE 4096UL
#define REGION (16 * PAGE)
#define SLOT (4UL << 20)
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#define PM_GUARD_REGION (1ULL << 58)
#ifndef SYS_mseal
#define SYS_mseal 462 /* x86_64; the 6.1 headers lack it */
#endif

enum { NORESERVE, DROPPABLE, GROWSDOWN, SEALED, GUARD, UNGUARDED, SHAREDRW, SHAREDRO, PRIVMEMFD, NR };
static struct region {
    const char *name, *want;
    char *start;
    int skipped;
    char header[256], vmflags[256];
} R[NR] = {
    [NORESERVE] = { "noreserve", " nr" }, [DROPPABLE] = { "droppable", " dp" }, [GROWSDOWN] = { "growsdown", " gd" },
    [SEALED] = { "sealed", " sl" }, [GUARD] = { "guard", " gu" }, [UNGUARDED] = { "unguarded", " gu" },
    [SHAREDRW] = { "sharedrw", " mw" }, [SHAREDRO] = { "sharedro", "" }, [PRIVMEMFD] = { "privmemfd", "" },
};
static int memfd;
static char *base;
static size_t base_len;
static char smaps[1 << 20];
static sigjmp_buf fault;

static uint64_t word(int r, size_t i) { return ((uint64_t)(r + 1) << 56) ^ (i * 0x9E3779B97F4A7C15ULL); }

static int guard_page(int r, size_t page) { return r == GUARD && (page == 4 || page == 5); }

/* privmemfd's page 3 is its own (written through the private mapping), ~ the memfd's */
static uint64_t expected(int r, size_t i) { return r == PRIVMEMFD && i * 8 / PAGE == 3 ? ~word(r, i) : word(r, i); }

static void fill(char *p, int r)
{
    for (size_t i = 0; i < REGION / 8; i++)
        if (!guard_page(r, i * 8 / PAGE))
            ((uint64_t *)p)[i] = word(r, i);
}

static void check_data(long n, int r)
{
    if (r == DROPPABLE || R[r].skipped)
        return;
    const uint64_t *w = (const uint64_t *)R[r].start;
    for (size_t i = 0; i < REGION / 8; i++)
        if (!guard_page(r, i * 8 / PAGE) && w[i] != expected(r, i))
            FAIL("tick %ld: region %s word %zu is 0x%llx, expected 0x%llx", n, R[r].name, i, (unsigned long long)w[i],
                 (unsigned long long)expected(r, i));
    if (r == PRIVMEMFD) {
        uint64_t v;
        if (pread(memfd, &v, sizeof v, 3 * PAGE) != (ssize_t)sizeof v || v != word(r, 3 * PAGE / 8))
            FAIL("tick %ld: the memfd's page 3 holds 0x%llx: a private write reached it", n, (unsigned long long)v);
    }
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
                if (cur == PRIVMEMFD) {
                    /* a memfd comes back as a new one: its inode number differs, and so may its
                     * width, which the padding before the path makes up for: "N <path>" */
                    char *f = hdr[cur];
                    for (int field = 0; field < 4 && f; field++)
                        f = strchr(f, ' ') ? strchr(f, ' ') + 1 : NULL;
                    if (f) {
                        char *rest = f;
                        while ((*rest >= '0' && *rest <= '9') || *rest == ' ')
                            rest++;
                        memmove(f + 2, rest, strlen(rest) + 1);
                        f[0] = 'N';
                        f[1] = ' ';
                    }
                }
            }
        } else if (cur >= 0 && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flg[cur], 256, "%.*s", (int)len, line);
        }
    }
    return inside;
}

static void on_fault(int sig)
{
    (void)sig;
    siglongjmp(fault, 1);
}

static void check_guards(long n)
{
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0)
        FAIL("open pagemap: %s", strerror(errno));
    for (int r = GUARD; r <= UNGUARDED; r++) {
        if (R[r].skipped)
            continue;
        uint64_t e[16];
        if (pread(pm, e, sizeof e, (off_t)((uintptr_t)R[r].start / PAGE * 8)) != (ssize_t)sizeof e)
            FAIL("pread pagemap: %s", strerror(errno));
        for (size_t p = 0; p < 16; p++)
            if (!!(e[p] & PM_GUARD_REGION) != guard_page(r, p))
                FAIL("tick %ld: region %s page %zu %s a guard page", n, R[r].name, p, guard_page(r, p) ? "is not" : "is");
    }
    close(pm);
    if (R[GUARD].skipped)
        return;
    volatile char *g = R[GUARD].start + 4 * PAGE;
    if (sigsetjmp(fault, 1) == 0) {
        (void)*g;
        FAIL("tick %ld: reading a guard page did not fault", n);
    }
}

static void check(long n)
{
    static char hdr[NR][256], flg[NR][256];
    memset(hdr, 0, sizeof hdr);
    memset(flg, 0, sizeof flg);
    int inside = scan(hdr, flg);
    int expected = 0;
    for (int r = 0; r < NR; r++) {
        if (R[r].skipped)
            continue;
        expected++;
        if (strcmp(hdr[r], R[r].header) != 0)
            FAIL("tick %ld: region %s: smaps header '%s', was '%s'", n, R[r].name, hdr[r], R[r].header);
        if (strcmp(flg[r], R[r].vmflags) != 0)
            FAIL("tick %ld: region %s: '%s', was '%s'", n, R[r].name, flg[r], R[r].vmflags);
        check_data(n, r);
    }
    if (inside != expected)
        FAIL("tick %ld: %d mappings inside the reservation, expected %d", n, inside, expected);
    check_guards(n);
    if (!R[SEALED].skipped) {
        if (munmap(R[SEALED].start, PAGE) == 0 || errno != EPERM)
            FAIL("tick %ld: munmap of the sealed region: %s", n, strerror(errno));
        if (mprotect(R[SEALED].start, PAGE, PROT_READ | PROT_WRITE) == 0 || errno != EPERM)
            FAIL("tick %ld: mprotect of the sealed region: %s", n, strerror(errno));
    }
    if (mprotect(R[SHAREDRO].start, REGION, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
        FAIL("tick %ld: mprotect(PROT_WRITE) of a shared mapping of a file opened O_RDONLY: %s", n, strerror(errno));
}

static void skip(int r, const char *why)
{
    R[r].skipped = 1;
    say("NOTE region %s left out: %s", R[r].name, why);
}

/* Maps region r (MAP_FIXED into its slot) and returns 0, or the errno of a refusal to skip it for. */
static int make(int r, const char *wd)
{
    char *at = R[r].start;
    int anon = MAP_ANONYMOUS | MAP_FIXED;
    switch (r) {
    case NORESERVE:
    case GUARD:
    case UNGUARDED:
    case GROWSDOWN:
    case SEALED: {
        int extra = r == NORESERVE ? MAP_NORESERVE : r == GROWSDOWN ? MAP_GROWSDOWN : 0;
        if (mmap(at, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | anon | extra, -1, 0) != at)
            FAIL("mmap region %s: %s", R[r].name, strerror(errno));
        if (r == GUARD || r == UNGUARDED) {
            if (madvise(at + (r == GUARD ? 4 : 0) * PAGE, (r == GUARD ? 2 : 1) * PAGE, MADV_GUARD_INSTALL) != 0) {
                int e = errno;
                munmap(at, REGION);
                return e;
            }
            if (r == UNGUARDED && madvise(at, PAGE, MADV_GUARD_REMOVE) != 0)
                FAIL("MADV_GUARD_REMOVE: %s", strerror(errno));
        }
        fill(at, r);
        if (r == SEALED) {
            if (mprotect(at, REGION, PROT_READ) != 0)
                FAIL("mprotect: %s", strerror(errno));
            if (syscall(SYS_mseal, at, REGION, 0) != 0) {
                int e = errno;
                munmap(at, REGION);
                return e;
            }
        }
        return 0;
    }
    case DROPPABLE:
        if (mmap(at, REGION, PROT_READ | PROT_WRITE, MAP_DROPPABLE | anon, -1, 0) != at)
            return errno;
        fill(at, r);
        return 0;
    case PRIVMEMFD: {
        static char data[REGION];
        fill(data, r);
        memfd = memfd_create("vmaflags-private", MFD_CLOEXEC);
        if (memfd < 0 || write(memfd, data, REGION) != (ssize_t)REGION)
            FAIL("memfd: %s", strerror(errno));
        if (mmap(at, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, memfd, 0) != at)
            FAIL("mapping the memfd privately: %s", strerror(errno));
        for (size_t i = 3 * PAGE / 8; i < 4 * PAGE / 8; i++)
            ((uint64_t *)at)[i] = ~word(r, i);
        return 0;
    }
    default: {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.dat", wd, r == SHAREDRW ? "rw" : "ro");
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        static char page[REGION];
        fill(page, r);
        if (fd < 0 || write(fd, page, REGION) != (ssize_t)REGION)
            FAIL("writing %s: %s", path, strerror(errno));
        if (r == SHAREDRO) {
            close(fd);
            fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0 || mmap(at, REGION, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) != at)
            FAIL("mapping %s: %s", path, strerror(errno));
        close(fd);
        return 0;
    }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: vmaflags WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    struct sigaction sa = { .sa_handler = on_fault };
    sigaction(SIGSEGV, &sa, NULL);

    base_len = (NR + 1) * SLOT;
    base = mmap(NULL, base_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        FAIL("reserving %zu bytes: %s", base_len, strerror(errno));
    char *slot0 = (char *)(((uintptr_t)base + SLOT - 1) & ~(SLOT - 1));
    for (int r = 0; r < NR; r++) {
        /* a growsdown region sits at its slot's top: the kernel keeps a gap below it */
        R[r].start = slot0 + (size_t)r * SLOT + (r == GROWSDOWN ? SLOT - REGION - PAGE : 0);
        int e = make(r, argv[1]);
        if (e == EINVAL || e == ENOSYS)
            skip(r, strerror(e));
        else if (e)
            FAIL("region %s: %s", R[r].name, strerror(e));
    }
    char *p = base;
    for (int r = 0; r <= NR; r++) {
        char *end = r < NR ? R[r].start : base + base_len;
        if (end > p && munmap(p, (size_t)(end - p)) != 0)
            FAIL("munmap gap: %s", strerror(errno));
        if (r < NR)
            p = R[r].start + REGION;
    }
    static char hdr[NR][256], flg[NR][256];
    scan(hdr, flg);
    for (int r = 0; r < NR; r++) {
        if (R[r].skipped)
            continue;
        memcpy(R[r].header, hdr[r], 256);
        memcpy(R[r].vmflags, flg[r], 256);
        say("REGION %s %p-%p %s", R[r].name, R[r].start, R[r].start + REGION, R[r].vmflags + 9);
        if (!strstr(R[r].vmflags, R[r].want) || (r == SHAREDRO && strstr(R[r].vmflags, " mw")) || (r == PRIVMEMFD && strstr(R[r].vmflags, " sh")))
            FAIL("setup: region %s: VmFlags '%s' (expected '%s')", R[r].name, R[r].vmflags,
                 r == SHAREDRO ? "no mw" : r == PRIVMEMFD ? "no sh" : R[r].want + 1);
    }
    check(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            char *rw = R[SHAREDRW].start;
            if (mprotect(rw, REGION, PROT_READ | PROT_WRITE) != 0)
                FAIL("mprotect(PROT_WRITE) of a shared mapping of a file opened O_RDWR: %s", strerror(errno));
            rw[8] ^= 1;
            rw[8] ^= 1;
            if (mprotect(rw, REGION, PROT_READ) != 0)
                FAIL("mprotect back: %s", strerror(errno));
            check(n);
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
