/* memfdpos: file offsets that move every tick, for incremental checkpoints (the offset at each
 * checkpoint must be the one restored). argv[1] = workdir. Protocol as in README.md.
 * Three files are appended to with write(2) only, so their offsets are a function of the tick: a
 * memfd ("amber-pos"), a plain file <wd>/plain.dat opened O_RDWR, and an O_TMPFILE file in <wd>.
 * Tick n writes n%7+1 records of 16 bytes to each, one write per record ("<letter><n, 10 digits>.<i>..\n").
 * A fourth file, memfd "amber-seek" holding 64 KiB of a pattern, is only read and lseek'ed: tick n
 * finds its offset at pos(n-1), reads 8 bytes there with read(2) (offset + 8), then lseeks to pos(n).
 * Each tick, before and after writing: lseek(fd, 0, SEEK_CUR) and st_size of each appended file equal
 * the records written so far, and pread of the whole file gives exactly those records; F_GETFL,
 * st_nlink and the memfds' /proc/self/fd link names equal setup.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "target.h"

#define REC 16
enum { M, F, T, S, NF };
static const char *names[NF] = { "memfd", "plain.dat", "O_TMPFILE", "seek memfd" };
static const char letters[3] = { 'M', 'F', 'T' };
static int fd[NF], fl0[NF];
static nlink_t nlink0[NF];
static char link0[2][256];
static char *buf;
static size_t buf_size;

static long pos(long k) { return (k * 7919 + 13) % 60000; }
static unsigned char pattern(long i) { return (unsigned char)((i * 7) ^ (i >> 8)); }

static long written(long ticks) /* bytes after ticks 1..ticks */
{
    long b = 0;
    for (long k = 1; k <= ticks; k++)
        b += (k % 7 + 1) * REC;
    return b;
}

static void record(char *r, int file, long k, long i)
{
    char tmp[48]; /* 16 bytes while k < 10^10 */
    snprintf(tmp, sizeof tmp, "%c%010ld.%ld..\n", letters[file], k, i);
    memcpy(r, tmp, REC);
}

static void readlink_fd(int i, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd[i]);
    ssize_t n = readlink(path, out, size - 1);
    if (n < 0)
        FAIL("readlink %s: %s", path, strerror(errno));
    out[n] = 0;
}

/* the appended file i must hold exactly the records of ticks 1..ticks, its offset at the end */
static void check_file(long n, int i, long ticks)
{
    long want = written(ticks);
    off_t cur = lseek(fd[i], 0, SEEK_CUR);
    struct stat st;
    if (fstat(fd[i], &st) != 0)
        FAIL("fstat %s: %s", names[i], strerror(errno));
    if (cur != want || st.st_size != want)
        FAIL("tick %ld: %s: offset %lld size %lld, expected both %ld", n, names[i], (long long)cur,
             (long long)st.st_size, want);
    if ((size_t)want > buf_size) {
        buf_size = (size_t)want * 2;
        buf = realloc(buf, buf_size);
        if (!buf)
            FAIL("realloc: out of memory");
    }
    if (pread(fd[i], buf, (size_t)want, 0) != want)
        FAIL("tick %ld: pread %s: %s", n, names[i], strerror(errno));
    char r[REC];
    long off = 0;
    for (long k = 1; k <= ticks; k++)
        for (long j = 0; j <= k % 7; j++, off += REC) {
            record(r, i, k, j);
            if (memcmp(buf + off, r, REC) != 0)
                FAIL("tick %ld: %s at %ld: '%.15s', expected '%.15s'", n, names[i], off, buf + off, r);
        }
}

static void check_all(long n, long ticks)
{
    for (int i = 0; i < NF; i++) {
        struct stat st;
        if (fcntl(fd[i], F_GETFL) != fl0[i] || fstat(fd[i], &st) != 0 || st.st_nlink != nlink0[i])
            FAIL("tick %ld: %s: flags 0x%x links %lu, were 0x%x and %lu", n, names[i], fcntl(fd[i], F_GETFL),
                 (unsigned long)st.st_nlink, fl0[i], (unsigned long)nlink0[i]);
        if (i < T)
            check_file(n, i, ticks);
    }
    check_file(n, T, ticks);
    char l[256];
    readlink_fd(M, l, sizeof l);
    if (strcmp(l, link0[0]) != 0)
        FAIL("tick %ld: the memfd is '%s', was '%s'", n, l, link0[0]);
    readlink_fd(S, l, sizeof l);
    if (strcmp(l, link0[1]) != 0)
        FAIL("tick %ld: the seek memfd is '%s', was '%s'", n, l, link0[1]);
    off_t cur = lseek(fd[S], 0, SEEK_CUR);
    if (cur != pos(ticks))
        FAIL("tick %ld: the seek memfd's offset is %lld, expected %ld", n, (long long)cur, pos(ticks));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: memfdpos WORKDIR");
    char stop[4200], path[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    snprintf(path, sizeof path, "%s/plain.dat", argv[1]);
    fd[M] = memfd_create("amber-pos", 0);
    fd[F] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    fd[T] = open(argv[1], O_TMPFILE | O_RDWR, 0600);
    fd[S] = memfd_create("amber-seek", 0);
    for (int i = 0; i < NF; i++)
        if (fd[i] < 0)
            FAIL("creating %s: %s", names[i], strerror(errno));
    static unsigned char pat[65536];
    for (long i = 0; i < (long)sizeof pat; i++)
        pat[i] = pattern(i);
    if (write(fd[S], pat, sizeof pat) != (ssize_t)sizeof pat || lseek(fd[S], pos(0), SEEK_SET) != pos(0))
        FAIL("filling the seek memfd: %s", strerror(errno));
    for (int i = 0; i < NF; i++) {
        struct stat st;
        fstat(fd[i], &st);
        fl0[i] = fcntl(fd[i], F_GETFL);
        nlink0[i] = st.st_nlink;
    }
    readlink_fd(M, link0[0], sizeof link0[0]);
    readlink_fd(S, link0[1], sizeof link0[1]);
    say("FILES %s=%d %s=%d %s=%d %s=%d links %lu %lu %lu %lu", names[M], fd[M], names[F], fd[F], names[T], fd[T],
        names[S], fd[S], (unsigned long)nlink0[M], (unsigned long)nlink0[F], (unsigned long)nlink0[T],
        (unsigned long)nlink0[S]);
    if (nlink0[T] != 0 || nlink0[F] != 1)
        FAIL("setup: O_TMPFILE has %lu links, plain.dat %lu", (unsigned long)nlink0[T], (unsigned long)nlink0[F]);

    say("READY");
    for (long n = 1;; n++) {
        check_all(n, n - 1);
        if (access(stop, F_OK) == 0) {
            say("PASS %ld", n - 1);
            return 0;
        }
        for (int i = M; i <= T; i++)
            for (long j = 0; j <= n % 7; j++) {
                char r[REC];
                record(r, i, n, j);
                if (write(fd[i], r, REC) != REC)
                    FAIL("tick %ld: write %s: %s", n, names[i], strerror(errno));
            }
        char b[8];
        long p = pos(n - 1);
        if (read(fd[S], b, 8) != 8 || lseek(fd[S], 0, SEEK_CUR) != p + 8)
            FAIL("tick %ld: read 8 at the seek memfd's offset: %s", n, strerror(errno));
        for (int i = 0; i < 8; i++)
            if ((unsigned char)b[i] != pattern(p + i))
                FAIL("tick %ld: the seek memfd at %ld: byte 0x%02x, expected 0x%02x", n, p + i, (unsigned char)b[i],
                     pattern(p + i));
        if (lseek(fd[S], pos(n), SEEK_SET) != pos(n))
            FAIL("tick %ld: lseek: %s", n, strerror(errno));
        check_all(n, n);
        say("tick %ld offset=%ld seek=%ld", n, written(n), pos(n));
        tick_sleep();
    }
}
