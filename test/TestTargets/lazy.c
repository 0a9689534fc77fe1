/* lazy: memory a lazy restore must place while the program already runs. argv[1] = workdir,
 * argv[2] = MiB of the main region (default 256). Protocol as in README.md.
 * Setup: region A (MiB, private anonymous) with a page pattern on all pages but every 7th (never
 * touched: reads as zero); region B, 16 MiB from malloc (so glibc mmaps it) with its own pattern;
 * region C, 4 MiB with a pattern; <wd>/page.bin, one page of known bytes. Each tick checks and
 * rewrites 4 pages of A (the pattern keeps a per-page generation), and does tick_ops (below): drops,
 * kernel writes, mremaps and forks on regions D and E, checked as they go. A lazy restore is
 * exercised by every tick that runs before its memory is in (a migration's destination, say).
 * At stop (the test makes the stop file before the restore, so all this runs while most pages
 * are still missing; C and B are mapped above A, and the pager pushes in address order): a forked
 * child finds W (1 MiB with a pattern, MADV_WIPEONFORK) all zero: it is not the parent's; page 100
 * of C is made read-only (C is then three mappings); the second half of C is dropped with
 * MADV_DONTNEED and must read zero; a pread of page.bin into the
 * last page of C's first half (the kernel touches the page, not the program) must bring the file's
 * bytes, and the rest of C its pattern; B grows to 64 MiB by realloc (glibc mremaps it: its pages
 * move) and is checked at its new place; a forked child checksums A and B and exits 0 or 1
 * (missing pages of a child are served too); W still holds its pattern in the parent; then all
 * of A is checked page by page.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "target.h"

#define PAGE 4096UL
#define B_LEN (16UL << 20)
#define B_GROWN (64UL << 20)
#define C_LEN (4UL << 20)
#define D_LEN (1UL << 20)
#define E_LEN (4UL << 20)
#define E_CHUNK (64 * PAGE)
#define W_LEN (1UL << 20)

static uint8_t *A, *B, *C, *D, *E, *W;
static uint8_t *d_slots[2]; /* D moves between two places each tick */
static uint32_t e_gen[E_LEN / E_CHUNK];
static size_t a_len;
static uint32_t gen[1 << 20]; /* generation of each page of A */
static char wd[4096];

static uint64_t word(uint64_t region, uint64_t page, uint64_t g, uint64_t i) {
    uint64_t x = (region << 56) ^ (page << 20) ^ (g << 8) ^ i ^ 0x9e3779b97f4a7c15ULL;
    x ^= x >> 31; x *= 0xbf58476d1ce4e5b9ULL; x ^= x >> 29;
    return x;
}

static void fill(uint8_t *p, uint64_t region, uint64_t page, uint64_t g) {
    uint64_t *w = (uint64_t *)p;
    for (uint64_t i = 0; i < PAGE / 8; i++) w[i] = word(region, page, g, i);
}

/* 0 if the page holds its pattern (or zero for a never-touched page of A) */
static int check(const uint8_t *p, uint64_t region, uint64_t page, uint64_t g, int zero) {
    const uint64_t *w = (const uint64_t *)p;
    for (uint64_t i = 0; i < PAGE / 8; i++)
        if (w[i] != (zero ? 0 : word(region, page, g, i))) return -1;
    return 0;
}

static int a_untouched(size_t page) { return page % 7 == 6; }

static int check_a(size_t skip_last) {
    for (size_t page = 0; page < a_len / PAGE - skip_last; page++)
        if (check(A + page * PAGE, 'A', page, gen[page], a_untouched(page))) return (int)page + 1;
    return 0;
}

static int check_b(size_t len) {
    for (size_t page = 0; page < len / PAGE; page++)
        if (check(B + page * PAGE, 'B', page, 0, page >= B_LEN / PAGE)) return (int)page + 1;
    return 0;
}

/* Every tick, what a lazy restore must follow while pages are still missing (after one, all are):
 * a chunk of E dropped (zero), read into by the kernel (pread) and written again; D moved by
 * mremap to its other place and checked there; every 10 ticks a forked child checks 64 pages of A
 * and all of D. */
static void tick_ops(int n, int page_fd) {
    size_t k = (size_t)n % (E_LEN / E_CHUNK);
    uint8_t *chunk = E + k * E_CHUNK;
    for (size_t page = 0; page < E_CHUNK / PAGE; page++)
        if (check(chunk + page * PAGE, 'E', k * 64 + page, e_gen[k], 0)) FAIL("tick %d: E page %zu wrong", n, k * 64 + page);
    if (madvise(chunk, E_CHUNK, MADV_DONTNEED)) FAIL("madvise: %s", strerror(errno));
    for (size_t page = 0; page < E_CHUNK / PAGE; page++)
        if (check(chunk + page * PAGE, 'E', 0, 0, 1)) FAIL("tick %d: E page %zu is not zero after MADV_DONTNEED", n, k * 64 + page);
    if (pread(page_fd, chunk, PAGE, 0) != (ssize_t)PAGE) FAIL("pread into E: %s", strerror(errno));
    for (size_t i = 0; i < PAGE; i++)
        if (chunk[i] != (uint8_t)(i * 7 + 3)) FAIL("tick %d: the page pread into E differs at byte %zu", n, i);
    e_gen[k]++;
    for (size_t page = 0; page < E_CHUNK / PAGE; page++) fill(chunk + page * PAGE, 'E', k * 64 + page, e_gen[k]);

    uint8_t *to = D == d_slots[0] ? d_slots[1] : d_slots[0];
    if (mremap(D, D_LEN, D_LEN, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to) FAIL("mremap: %s", strerror(errno));
    D = to;
    for (size_t page = 0; page < D_LEN / PAGE; page++)
        if (check(D + page * PAGE, 'D', page, 0, 0)) FAIL("tick %d: D page %zu wrong after mremap", n, page);

    if (n % 10) return;
    pid_t child = fork();
    if (child < 0) FAIL("fork: %s", strerror(errno));
    if (child == 0) {
        for (size_t i = 0; i < 64; i++) {
            size_t page = ((size_t)n * 7919 + i * 104729) % (a_len / PAGE);
            if (check(A + page * PAGE, 'A', page, gen[page], a_untouched(page))) _exit(1);
        }
        for (size_t page = 0; page < D_LEN / PAGE; page++)
            if (check(D + page * PAGE, 'D', page, 0, 0)) _exit(2);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child) FAIL("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("tick %d: a forked child found A or D wrong (status %d)", n, status);
}

static void final_check(int ticks) {
    /* memory a child does not get as it is: W, wiped on fork, reads zero in a child forked now */
    pid_t wiped = fork();
    if (wiped < 0) FAIL("fork: %s", strerror(errno));
    if (wiped == 0) {
        for (size_t page = 0; page < W_LEN / PAGE; page++)
            if (check(W + page * PAGE, 'W', page, 0, 1)) _exit(1);
        _exit(0);
    }
    int wstatus;
    if (waitpid(wiped, &wstatus, 0) != wiped) FAIL("waitpid: %s", strerror(errno));
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) FAIL("a forked child found data in W, wiped on fork (status %d)", wstatus);

    /* a mapping split in three by an mprotect (the kernel says nothing of it), pages still missing */
    if (mprotect(C + 100 * PAGE, PAGE, PROT_READ)) FAIL("mprotect: %s", strerror(errno));

    /* dropped pages */
    if (madvise(C + C_LEN / 2, C_LEN / 2, MADV_DONTNEED)) FAIL("madvise: %s", strerror(errno));
    for (size_t page = C_LEN / PAGE / 2; page < C_LEN / PAGE; page++)
        if (check(C + page * PAGE, 'C', page, 0, 1)) FAIL("C page %zu is not zero after MADV_DONTNEED", page);

    /* a page the kernel writes: the last of C's first half */
    char path[4200];
    snprintf(path, sizeof path, "%s/page.bin", wd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("open page.bin: %s", strerror(errno));
    uint8_t *into = C + C_LEN / 2 - PAGE;
    if (pread(fd, into, PAGE, 0) != (ssize_t)PAGE) FAIL("pread page.bin into C: %s", strerror(errno));
    close(fd);
    for (size_t i = 0; i < PAGE; i++)
        if (into[i] != (uint8_t)(i * 7 + 3)) FAIL("the page pread into C differs at byte %zu", i);
    for (size_t page = 0; page < C_LEN / PAGE / 2 - 1; page++)
        if (check(C + page * PAGE, 'C', page, 0, 0)) FAIL("C page %zu wrong", page);

    /* moved pages */
    uint8_t *grown = realloc(B, B_GROWN);
    if (!grown) FAIL("realloc");
    B = grown;
    memset(B + B_LEN, 0, B_GROWN - B_LEN);
    if (check_b(B_GROWN)) FAIL("B after realloc to 64 MiB: page %d wrong", check_b(B_GROWN) - 1);

    /* a child's missing pages */
    pid_t child = fork();
    if (child < 0) FAIL("fork: %s", strerror(errno));
    if (child == 0) _exit(check_a(0) || check_b(B_GROWN) ? 1 : 0);
    int status;
    if (waitpid(child, &status, 0) != child) FAIL("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("the forked child found its copy of A or B wrong (status %d)", status);
    for (size_t page = 0; page < W_LEN / PAGE; page++)
        if (check(W + page * PAGE, 'W', page, 0, 0)) FAIL("W page %zu wrong after the forks", page);

    int bad = check_a(0);
    if (bad) FAIL("A page %d wrong", bad - 1);
    say("PASS %d", ticks);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2) FAIL("usage: lazy WORKDIR [MiB]");
    snprintf(wd, sizeof wd, "%s", argv[1]);
    a_len = (argc > 2 ? strtoul(argv[2], NULL, 10) : 256) << 20;
    if (a_len / PAGE > sizeof gen / sizeof *gen) FAIL("too big");
    /* Mapped top-down: D's two places (one reservation, D in its first half), E, C, W, B, then A below
     * them all. The pager pushes in address order, so D, E, C and B are still missing while A comes
     * in: the ticks' and the final checks' drops, moves and reads into them meet missing pages. */
    d_slots[0] = mmap(NULL, 2 * D_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    E = mmap(NULL, E_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    C = mmap(NULL, C_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    W = mmap(NULL, W_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (W == MAP_FAILED || madvise(W, W_LEN, MADV_WIPEONFORK)) FAIL("mapping W: %s", strerror(errno));
    B = malloc(B_LEN);
    A = mmap(NULL, a_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (A == MAP_FAILED || C == MAP_FAILED || E == MAP_FAILED || d_slots[0] == MAP_FAILED || !B) FAIL("allocating");
    d_slots[1] = d_slots[0] + D_LEN;
    D = mmap(d_slots[0], D_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (D != d_slots[0]) FAIL("mapping D");
    for (size_t page = 0; page < D_LEN / PAGE; page++) fill(D + page * PAGE, 'D', page, 0);
    for (size_t page = 0; page < E_LEN / PAGE; page++) fill(E + page * PAGE, 'E', page, 0);
    for (size_t page = 0; page < a_len / PAGE; page++)
        if (!a_untouched(page)) fill(A + page * PAGE, 'A', page, 0);
    for (size_t page = 0; page < B_LEN / PAGE; page++) fill(B + page * PAGE, 'B', page, 0);
    for (size_t page = 0; page < C_LEN / PAGE; page++) fill(C + page * PAGE, 'C', page, 0);
    for (size_t page = 0; page < W_LEN / PAGE; page++) fill(W + page * PAGE, 'W', page, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/page.bin", wd);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint8_t one[PAGE];
    for (size_t i = 0; i < PAGE; i++) one[i] = (uint8_t)(i * 7 + 3);
    if (fd < 0 || write(fd, one, PAGE) != (ssize_t)PAGE) FAIL("writing page.bin");
    close(fd);
    int page_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (page_fd < 0) FAIL("open page.bin: %s", strerror(errno));
    say("READY");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", wd);
    uint64_t seed = 1;
    for (int n = 1;; n++) {
        if (access(stop, F_OK) == 0) final_check(n - 1);
        for (int k = 0; k < 4; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t page = (seed >> 33) % (a_len / PAGE);
            if (a_untouched(page)) continue;
            if (check(A + page * PAGE, 'A', page, gen[page], 0)) FAIL("tick %d: A page %zu wrong", n, page);
            fill(A + page * PAGE, 'A', page, ++gen[page]);
        }
        tick_ops(n, page_fd);
        say("tick %d", n);
        tick_sleep();
    }
}
