/* guards.c - checkpoint/restore target: PROT_NONE guards that hold data,
 * mprotect'ed sub-ranges, an untouched PROT_NONE region and a MAP_PRIVATE
 * file mapping with COW-modified pages (one of them read-only).
 *
 * usage: guards <workdir>
 * Protocol: READY, then every ~20 ms "tick <n>". If <workdir>/stop exists:
 * full verification, "PASS <n>", exit 0. Any mismatch: "FAIL ...", exit 1.
 *
 * Layout (offsets in region A, 1 MiB anonymous, filled before mprotect):
 *   [0,64K) ---p guard   [64K,448K) rw-p   [448K,576K) r--p   [576K,960K) rw-p
 *   [960K,1M) ---p guard
 * Region B: 256 KiB PROT_NONE, never touched. Region F: <workdir>/map.bin
 * (64 KiB) MAP_PRIVATE rw, pages 2,5,9 modified in memory, page 9 then r--.
 * Every region has unmapped holes around it so the kernel cannot merge
 * neighbouring VMAs. /proc/self/maps is captured after setup and must stay
 * byte-identical (checked every tick). No malloc at all, so [heap] is stable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A FAIL line can quote two /proc/self/maps lines: twice the default line. */
#define TARGET_LINE_MAX 1024
#include "target.h"

#define PG 4096ul
#define KB 1024ul
#define A_SZ (1024 * KB)
#define B_SZ (256 * KB)
#define F_SZ (64 * KB)
#define F_PAGES (F_SZ / PG)
#define RO_OFF (448 * KB)
#define RO_SZ (128 * KB)
#define NRW 192   /* rw pages: 96 in [64K,448K) + 96 in [576K,960K) */

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
/* Content of word at byte offset off of a region, version v (0 = initial). */
static uint64_t pat(uint64_t tag, uint64_t off, uint64_t v) { return mix(tag ^ (off << 8) ^ (v << 40)); }

static volatile uint64_t *A, *B, *F;
static uint32_t rw_ver[NRW];                   /* version of each rw page of A */
static char maps0[256 * 1024], maps1[256 * 1024];
static char stop_path[4096], file_path[4096];
static const int f_mod[3] = { 2, 5, 9 };      /* COW-modified pages of F; 9 is read-only */

static size_t rw_page_off(int i) { return i < 96 ? 64 * KB + i * PG : 576 * KB + (i - 96) * PG; }

static void fill(volatile uint64_t *base, size_t off, size_t len, uint64_t tag, uint64_t v) {
    for (size_t o = off; o < off + len; o += 8) base[o / 8] = pat(tag, o, v);
}
static void check(volatile uint64_t *base, size_t off, size_t len, uint64_t tag, uint64_t v, const char *what) {
    for (size_t o = off; o < off + len; o += 8)
        if (base[o / 8] != pat(tag, o, v))
            FAIL("%s: word at offset %#zx expected %016llx got %016llx", what, o,
                 (unsigned long long)pat(tag, o, v), (unsigned long long)base[o / 8]);
}
static int f_page_version(size_t p) { return p == 2 || p == 5 || p == 9; }

static size_t read_maps(char *buf, size_t cap) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("open /proc/self/maps: %s", strerror(errno));
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd, buf + len, cap - 1 - len)) > 0) len += r;
    if (r < 0) FAIL("read /proc/self/maps: %s", strerror(errno));
    if (len >= cap - 1) FAIL("/proc/self/maps larger than %zu", cap);
    close(fd);
    buf[len] = 0;
    return len;
}
static void check_maps(const char *when) {
    read_maps(maps1, sizeof maps1);
    if (strcmp(maps0, maps1) == 0) return;
    const char *a = maps0, *b = maps1;       /* find the first differing line */
    while (1) {
        const char *ea = strchrnul(a, '\n'), *eb = strchrnul(b, '\n');
        if (ea - a != eb - b || memcmp(a, b, ea - a))
            FAIL("%s: /proc/self/maps differs: expected \"%.*s\" got \"%.*s\"", when,
                 (int)(ea - a), a, (int)(eb - b), b);
        a = *ea ? ea + 1 : ea; b = *eb ? eb + 1 : eb;
    }
}
static void xprotect(volatile void *p, size_t len, int prot) {
    if (mprotect((void *)p, len, prot)) FAIL("mprotect(%p, %zu, %d): %s", (void *)p, len, prot, strerror(errno));
}
static void check_file_map(void) {
    for (size_t p = 0; p < F_PAGES; p++)
        check(F, p * PG, PG, f_page_version(p) ? 0xc0 : 0xf1, 0, f_page_version(p) ? "file map (modified page)" : "file map (file page)");
}
static void check_file_on_disk(void) {
    static uint64_t buf[F_SZ / 8 + 1];
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("open %s: %s", file_path, strerror(errno));
    ssize_t r = read(fd, buf, sizeof buf);
    if (r != (ssize_t)F_SZ) FAIL("map.bin: read %zd bytes, expected %lu (%s)", r, F_SZ, strerror(errno));
    close(fd);
    check(buf, 0, F_SZ, 0xf1, 0, "map.bin on disk (private mapping leaked to file?)");
}

/* Reserve 4 MiB, carve out regions with unmapped holes between them. */
static void setup(void) {
    char *res = mmap(NULL, 4096 * KB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) FAIL("mmap reserve: %s", strerror(errno));
    if (munmap(res, 4096 * KB)) FAIL("munmap reserve: %s", strerror(errno));
    A = mmap(res + 512 * KB, A_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    B = mmap(res + 2048 * KB, B_SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (A == MAP_FAILED || B == MAP_FAILED) FAIL("mmap A/B: %s", strerror(errno));
    fill(A, 0, A_SZ, 0xa0, 0);                       /* guards get data before PROT_NONE */
    xprotect(A, 64 * KB, PROT_NONE);
    xprotect((char *)A + A_SZ - 64 * KB, 64 * KB, PROT_NONE);
    xprotect((char *)A + RO_OFF, RO_SZ, PROT_READ);

    static uint64_t fbuf[F_SZ / 8];
    fill(fbuf, 0, F_SZ, 0xf1, 0);
    int fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) FAIL("open %s: %s", file_path, strerror(errno));
    if (write(fd, fbuf, F_SZ) != (ssize_t)F_SZ) FAIL("write map.bin: %s", strerror(errno));
    F = mmap(res + 3072 * KB, F_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
    if (F == MAP_FAILED) FAIL("mmap map.bin: %s", strerror(errno));
    if (close(fd)) FAIL("close map.bin: %s", strerror(errno));
    for (int i = 0; i < 3; i++) fill(F, f_mod[i] * PG, PG, 0xc0, 0);   /* COW copies */
    xprotect((char *)F + 9 * PG, PG, PROT_READ);
    read_maps(maps0, sizeof maps0);
}

int main(int argc, char **argv) {
    if (argc < 2) { say("FAIL usage: guards <workdir>"); return 1; }
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    snprintf(file_path, sizeof file_path, "%s/map.bin", argv[1]);
    setup();
    check_maps("setup");
    say("READY");

    for (unsigned long n = 1;; n++) {
        if (access(stop_path, F_OK) == 0) {
            check_maps("final");
            for (int i = 0; i < NRW; i++) check(A, rw_page_off(i), PG, 0xa0, rw_ver[i], "rw page");
            check(A, RO_OFF, RO_SZ, 0xa0, 0, "read-only range");
            check_file_map();
            check_file_on_disk();
            /* PROT_NONE guards: data written before the mprotect must survive */
            xprotect(A, 64 * KB, PROT_READ);
            check(A, 0, 64 * KB, 0xa0, 0, "low guard");
            xprotect(A, 64 * KB, PROT_NONE);
            xprotect((char *)A + A_SZ - 64 * KB, 64 * KB, PROT_READ);
            check(A, A_SZ - 64 * KB, 64 * KB, 0xa0, 0, "high guard");
            xprotect((char *)A + A_SZ - 64 * KB, 64 * KB, PROT_NONE);
            /* never-touched PROT_NONE region must read as zeros */
            xprotect(B, B_SZ, PROT_READ);
            for (size_t o = 0; o < B_SZ; o += 8)
                if (B[o / 8]) FAIL("untouched region B offset %#zx is %016llx, expected 0", o, (unsigned long long)B[o / 8]);
            xprotect(B, B_SZ, PROT_NONE);
            check_maps("final (after guard round-trip)");
            say("PASS %lu", n - 1);
            exit(0);
        } else if (errno != ENOENT) FAIL("access(%s): %s", stop_path, strerror(errno));

        /* verify then rewrite 3 rw pages; check RO range, file map and layout */
        for (int j = 0; j < 3; j++) {
            int i = (n * 37 + j * 61) % NRW;
            check(A, rw_page_off(i), PG, 0xa0, rw_ver[i], "rw page");
            rw_ver[i] = n;
            fill(A, rw_page_off(i), PG, 0xa0, n);
        }
        check(A, RO_OFF, RO_SZ, 0xa0, 0, "read-only range");
        check_file_map();
        check_maps("tick");
        say("tick %lu", n);
        tick_sleep();
    }
}
