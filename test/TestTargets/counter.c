/* counter.c - checkpoint/restore target: big heap, brk heap, .data, .bss,
 * stack and a write-only file descriptor whose offset must survive.
 *
 * usage: counter <workdir> [heap_MiB=64]
 * Protocol: READY, then every ~20 ms "tick <n> ...". If <workdir>/stop exists:
 * full verification, "PASS <n>", exit 0. Any mismatch: "FAIL ...", exit 1.
 *
 * Every value in memory is a pure function of (position, version, SEED), so
 * the program can always say what a word *should* contain without trusting
 * any other memory that a faulty restore might also have corrupted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "target.h"

#define PAGE 4096u
#define WPP (PAGE / 8)          /* 64-bit words per page */
#define SEED 0x5eed1234abcd9876ull
#define NSMALL 8

static uint64_t mix(uint64_t x) {               /* splitmix64 finalizer */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
/* Expected value of word w of the big buffer when its page has version v. */
static uint64_t val(uint64_t w, uint64_t v) { return mix(SEED ^ (w * 0x100000001b3ull) ^ (v << 48)); }
/* Position-weighted so that swapped/shifted pages change the sum. */
static uint64_t term(uint64_t w, uint64_t x) { return x * (2 * w + 1); }

/* ---- state ---- */
static uint64_t data_arr[512] = { 1 };   /* nonzero init -> lives in .data */
static uint64_t bss_arr[4096];           /* zero init -> lives in .bss */
static unsigned long data_ticks = 1000;  /* .data mirror of the tick count */
static unsigned long ticks;              /* .bss */

static volatile uint64_t *big;           /* volatile: all checks really read memory */
static size_t npages;
static uint32_t *ver;                    /* per-page version (small malloc -> brk) */
static uint64_t expect_sum;              /* maintained incrementally */
static unsigned char *small[NSMALL];
static const size_t small_sz[NSMALL] = { 24, 40, 100, 256, 512, 1000, 2048, 4000 };
static int fd = -1;
static off_t fd_off;                     /* bytes we have written to data.txt */
static char path[4096], stop_path[4096];

static uint64_t page_sum_expected(size_t p, uint64_t v) {
    uint64_t s = 0;
    for (size_t i = 0; i < WPP; i++) { uint64_t w = p * WPP + i; s += term(w, val(w, v)); }
    return s;
}
static void write_page(size_t p, uint64_t v) {
    for (size_t i = 0; i < WPP; i++) big[p * WPP + i] = val(p * WPP + i, v);
}
static void check_page(size_t p) {
    for (size_t i = 0; i < WPP; i++) {
        uint64_t w = p * WPP + i, want = val(w, ver[p]), got = big[w];
        if (got != want)
            FAIL("heap word %zu (page %zu ver %u) expected %016llx got %016llx", (size_t)w, p,
                 ver[p], (unsigned long long)want, (unsigned long long)got);
    }
}
static void full_checksum(const char *when) {
    uint64_t s = 0;
    for (size_t w = 0; w < npages * WPP; w++) s += term(w, big[w]);
    if (s != expect_sum) {
        for (size_t p = 0; p < npages; p++) check_page(p);   /* locate the bad word */
        FAIL("%s: heap checksum expected %016llx got %016llx", when,
             (unsigned long long)expect_sum, (unsigned long long)s);
    }
}

static uint64_t small_byte(int b, size_t i, unsigned long t) { return (uint8_t)(b * 31 + i * 7 + t); }
static void fill_small(unsigned long t) {
    for (int b = 0; b < NSMALL; b++)
        for (size_t i = 0; i < small_sz[b]; i++) small[b][i] = small_byte(b, i, t);
}
static void check_small(unsigned long t) {
    for (int b = 0; b < NSMALL; b++)
        for (size_t i = 0; i < small_sz[b]; i++)
            if (((volatile unsigned char *)small[b])[i] != small_byte(b, i, t))
                FAIL("small block %d byte %zu expected %02x got %02x", b, i,
                     (unsigned)small_byte(b, i, t), small[b][i]);
}

/* .data / .bss: element t%N holds mix(t ^ k); all others hold their initial value. */
static void check_statics(unsigned long t) {
    if (ticks != t || data_ticks != 1000 + t)
        FAIL("tick counters: expected %lu/%lu got %lu/%lu", t, 1000 + t, ticks, data_ticks);
    for (size_t i = 0; i < 512; i++) {
        uint64_t want = mix(i ^ 0xdada);
        unsigned long d = (t % 512 + 512 - i) % 512;    /* latest tick k<=t with k%512==i */
        if (t > d) want = mix((t - d) ^ 0xd1);
        if (((volatile uint64_t *)data_arr)[i] != want)
            FAIL(".data[%zu] expected %016llx got %016llx", i, (unsigned long long)want,
                 (unsigned long long)data_arr[i]);
    }
    for (size_t i = 0; i < 4096; i++)
        if (((volatile uint64_t *)bss_arr)[i] != mix(i ^ 0xb55 ^ (t << 20)) + i)
            FAIL(".bss[%zu] expected %016llx got %016llx", i,
                 (unsigned long long)(mix(i ^ 0xb55 ^ (t << 20)) + i), (unsigned long long)bss_arr[i]);
}
static void check_stack(volatile uint64_t *st, size_t n, unsigned long t) {
    for (size_t i = 0; i < n; i++)
        if (st[i] != mix(i * 3 + t))
            FAIL("stack[%zu] expected %016llx got %016llx", i, (unsigned long long)mix(i * 3 + t),
                 (unsigned long long)st[i]);
}

/* Offset of fd must equal what we wrote, and the file must be exactly that long. */
static void check_fd(void) {
    off_t cur = lseek(fd, 0, SEEK_CUR);
    struct stat st;
    if (cur < 0) FAIL("lseek(data.txt fd %d): %s", fd, strerror(errno));
    int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
    if (fl < 0 || fdf < 0) FAIL("fcntl(data.txt fd %d): %s", fd, strerror(errno));
    if ((fl & O_ACCMODE) != O_WRONLY || fdf != FD_CLOEXEC)
        FAIL("data.txt fd flags expected O_WRONLY/FD_CLOEXEC got %#x/%#x", fl, fdf);
    if (fstat(fd, &st) < 0) FAIL("fstat(data.txt fd): %s", strerror(errno));
    if (cur != fd_off || st.st_size != fd_off)
        FAIL("data.txt offset expected %lld got %lld, size expected %lld got %lld",
             (long long)fd_off, (long long)cur, (long long)fd_off, (long long)st.st_size);
}
static void check_file_contents(unsigned long n) {
    static char buf[1 << 20];
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) FAIL("open(%s) for reading: %s", path, strerror(errno));
    size_t len = 0;
    for (;;) {
        ssize_t r = read(rfd, buf + len, sizeof buf - 1 - len);
        if (r < 0) FAIL("read(%s): %s", path, strerror(errno));
        if (r == 0) break;
        len += r;
        if (len >= sizeof buf - 1) FAIL("data.txt larger than %zu bytes", sizeof buf);
    }
    close(rfd);
    buf[len] = 0;
    char *p = buf;
    for (unsigned long k = 1; k <= n; k++) {
        char want[32];
        int wl = snprintf(want, sizeof want, "%lu\n", k);
        if (strncmp(p, want, wl) != 0)
            FAIL("data.txt line %lu: expected \"%lu\" got \"%.20s\"", k, k, p);
        p += wl;
    }
    if (*p) FAIL("data.txt has extra data after line %lu: \"%.20s\"", n, p);
}

static void tick_work(unsigned long t, volatile uint64_t *st, size_t stn) {
    /* big buffer: verify the 4 pages we are about to overwrite, then rewrite them */
    for (uint64_t j = 0; j < 4; j++) {
        size_t p = (t * 7919 + j * 104729) % npages;
        check_page(p);
        expect_sum -= page_sum_expected(p, ver[p]);
        ver[p] = (uint32_t)t;
        write_page(p, t);
        expect_sum += page_sum_expected(p, t);
    }
    check_small(t - 1); fill_small(t);
    check_stack(st, stn, t - 1);
    for (size_t i = 0; i < stn; i++) st[i] = mix(i * 3 + t);
    check_statics(t - 1);
    ticks = t; data_ticks = 1000 + t;
    data_arr[t % 512] = mix(t ^ 0xd1);
    for (size_t i = 0; i < 4096; i++) bss_arr[i] = mix(i ^ 0xb55 ^ (t << 20)) + i;
    /* file: offset must be where we left it before this write */
    check_fd();
    char line[32];
    int l = snprintf(line, sizeof line, "%lu\n", t);
    ssize_t w = write(fd, line, l);
    if (w != l) FAIL("write(data.txt) tick %lu returned %zd: %s", t, w, strerror(errno));
    fd_off += l;
    check_fd();
    if (t % 10 == 0) full_checksum("periodic");
}

int main(int argc, char **argv) {
    if (argc < 2) { say("FAIL usage: counter <workdir> [heap_MiB]"); return 1; }
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
    if (mib == 0) FAIL("bad heap size %s", argv[2]);
    snprintf(path, sizeof path, "%s/data.txt", argv[1]);
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);

    npages = mib * 1024 * 1024 / PAGE;
    big = malloc(npages * PAGE);                     /* large -> its own mmap */
    ver = calloc(npages, sizeof *ver);               /* small -> brk heap (<=64 MiB) */
    if (!big || !ver) FAIL("malloc heap %zu MiB failed", mib);
    for (size_t p = 0; p < npages; p++) { write_page(p, 0); expect_sum += page_sum_expected(p, 0); }
    for (int b = 0; b < NSMALL; b++)
        if (!(small[b] = malloc(small_sz[b]))) FAIL("malloc small %d", b);
    fill_small(0);
    for (size_t i = 0; i < 512; i++) data_arr[i] = mix(i ^ 0xdada);
    for (size_t i = 0; i < 4096; i++) bss_arr[i] = mix(i ^ 0xb55) + i;
    volatile uint64_t stack_arr[2048];               /* 16 KiB on main's stack */
    for (size_t i = 0; i < 2048; i++) stack_arr[i] = mix(i * 3);

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) FAIL("open(%s): %s", path, strerror(errno));
    full_checksum("setup");
    say("READY");

    for (unsigned long n = 1;; n++) {
        if (access(stop_path, F_OK) == 0) {
            unsigned long done = n - 1;
            full_checksum("final");
            for (size_t p = 0; p < npages; p++) check_page(p);
            check_small(done); check_stack(stack_arr, 2048, done); check_statics(done);
            check_fd(); check_file_contents(done);
            say("PASS %lu", done);
            exit(0);
        } else if (errno != ENOENT) FAIL("access(%s): %s", stop_path, strerror(errno));
        tick_work(n, stack_arr, 2048);
        say("tick %lu sum=%016llx", n, (unsigned long long)expect_sum);
        tick_sleep();
    }
}
