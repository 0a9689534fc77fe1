/* pipeflags: the status flags and odd ends of pipes. argv[1] = workdir. Protocol as in README.md.
 *  A: read end O_NONBLOCK, write end blocking, "A-queued" waiting in it.
 *  B: write end O_NONBLOCK, read end blocking, "B-queued-bytes" waiting in it.
 *  C: its read end opened a second time through /proc/self/fd/N with O_RDONLY|O_NONBLOCK: two open
 *     file descriptions of one pipe end with different flags. Each tick a byte written into C is read
 *     through the reopened fd, another through the original one (same pipe), and the reopened fd then
 *     reads EAGAIN (it is non-blocking, the pipe empty).
 *  P: a packet-mode pipe (pipe2 O_DIRECT; the kernel sets O_DIRECT on the write end only): "abc" and
 *     "def" written, read back at the end as two separate 3-byte reads.
 *  W: a widowed pipe: "widow" written, then its write end closed (nobody holds it): poll shows
 *     POLLIN|POLLHUP; at the end the read end gives "widow", then 0 (EOF).
 *  E: a pipe whose read end is closed: a write gives EPIPE (SIGPIPE is ignored) every tick.
 *  F: a pipe grown to 1 MiB with F_SETPIPE_SZ, write end O_NONBLOCK; at the end exactly 1 MiB fits.
 * Every tick: F_GETFL of every fd equals what it was at setup, FIONREAD of each pipe holding bytes
 * equals what was queued, poll() of W, E and the empty ends equals setup. Prints once at setup
 * "FLAGS <name>=<fd>:0x<F_GETFL> ..." for every fd.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include "target.h"

enum { AR, AW, BR, BW, CR, CW, CX, PR, PW, WR, EW, FR, FW, NFD };
static const char *names[NFD] = { "A.r", "A.w", "B.r", "B.w", "C.r", "C.w", "C.reopened",
                                  "P.r", "P.w", "W.r", "E.w", "F.r", "F.w" };
static int fd[NFD], flags[NFD];
static short revents_W, revents_E, revents_CR;
static const char qa[] = "A-queued", qb[] = "B-queued-bytes";

static int getfl(int i)
{
    int f = fcntl(fd[i], F_GETFL);
    if (f < 0)
        FAIL("F_GETFL %s (fd %d): %s", names[i], fd[i], strerror(errno));
    return f;
}

static short poll1(int f, short events)
{
    struct pollfd p = { .fd = f, .events = events };
    if (poll(&p, 1, 0) < 0)
        FAIL("poll fd %d: %s", f, strerror(errno));
    return p.revents;
}

static int inq(int i)
{
    int n = -1;
    if (ioctl(fd[i], FIONREAD, &n) != 0)
        FAIL("FIONREAD %s: %s", names[i], strerror(errno));
    return n;
}

static void mkpipe(int r, int w, int pflags)
{
    int p[2];
    if (pipe2(p, pflags) != 0)
        FAIL("pipe2: %s", strerror(errno));
    fd[r] = p[0];
    fd[w] = p[1];
}

static void put(int i, const void *b, size_t len)
{
    if (write(fd[i], b, len) != (ssize_t)len)
        FAIL("write %s: %s", names[i], strerror(errno));
}

static void expect_read(int i, const char *want, size_t bufsize)
{
    char b[64];
    ssize_t got = read(fd[i], b, bufsize);
    if (got != (ssize_t)strlen(want) || memcmp(b, want, strlen(want)) != 0)
        FAIL("read %s: expected '%s', got %zd bytes '%.*s' (%s)", names[i], want, got, got > 0 ? (int)got : 0, b,
             got < 0 ? strerror(errno) : "");
}

static void check(long n)
{
    for (int i = 0; i < NFD; i++) {
        int f = getfl(i);
        if (f != flags[i])
            FAIL("tick %ld: F_GETFL of %s (fd %d) is 0x%x, was 0x%x", n, names[i], fd[i], f, flags[i]);
    }
    if (inq(AR) != (int)strlen(qa) || inq(BR) != (int)strlen(qb) || inq(PR) != 6 || inq(WR) != 5)
        FAIL("tick %ld: bytes queued A %d B %d P %d W %d, expected %zu %zu 6 5", n, inq(AR), inq(BR), inq(PR),
             inq(WR), strlen(qa), strlen(qb));
    if (poll1(fd[WR], POLLIN) != revents_W)
        FAIL("tick %ld: poll of the widowed pipe gives 0x%x, was 0x%x", n, poll1(fd[WR], POLLIN), revents_W);
    if (poll1(fd[EW], POLLOUT) != revents_E)
        FAIL("tick %ld: poll of the readerless pipe gives 0x%x, was 0x%x", n, poll1(fd[EW], POLLOUT), revents_E);
    if (poll1(fd[CR], POLLIN) != revents_CR)
        FAIL("tick %ld: poll of empty pipe C gives 0x%x, was 0x%x", n, poll1(fd[CR], POLLIN), revents_CR);
    errno = 0;
    if (write(fd[EW], "x", 1) != -1 || errno != EPIPE)
        FAIL("tick %ld: write to the readerless pipe: expected EPIPE, got %s", n, strerror(errno));
    int sz = fcntl(fd[FR], F_GETPIPE_SZ);
    if (sz != 1 << 20)
        FAIL("tick %ld: F_GETPIPE_SZ of F is %d, expected %d", n, sz, 1 << 20);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: pipeflags WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    signal(SIGPIPE, SIG_IGN);

    mkpipe(AR, AW, 0);
    fcntl(fd[AR], F_SETFL, O_NONBLOCK);
    put(AW, qa, strlen(qa));
    mkpipe(BR, BW, 0);
    fcntl(fd[BW], F_SETFL, O_NONBLOCK);
    put(BW, qb, strlen(qb));
    mkpipe(CR, CW, 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd[CR]);
    fd[CX] = open(path, O_RDONLY | O_NONBLOCK);
    if (fd[CX] < 0)
        FAIL("open %s: %s", path, strerror(errno));
    mkpipe(PR, PW, O_DIRECT);
    put(PW, "abc", 3);
    put(PW, "def", 3);
    int w[2], e[2];
    if (pipe(w) || pipe(e))
        FAIL("pipe: %s", strerror(errno));
    fd[WR] = w[0];
    if (write(w[1], "widow", 5) != 5)
        FAIL("write widow: %s", strerror(errno));
    close(w[1]);
    fd[EW] = e[1];
    close(e[0]);
    mkpipe(FR, FW, 0);
    if (fcntl(fd[FW], F_SETPIPE_SZ, 1 << 20) < 0)
        FAIL("F_SETPIPE_SZ: %s", strerror(errno));
    fcntl(fd[FW], F_SETFL, O_NONBLOCK);

    char line[TARGET_LINE_MAX - 2], *p = line;
    p += sprintf(p, "FLAGS");
    for (int i = 0; i < NFD; i++) {
        flags[i] = getfl(i);
        p += sprintf(p, " %s=%d:0x%x", names[i], fd[i], flags[i]);
    }
    say("%s", line);
    /* what the flags must be, whatever the restore does: checked once here. pipe2(O_DIRECT) sets
     * O_DIRECT on the write end only; the packets are made by writes through it. */
    if ((flags[AR] & O_NONBLOCK) == 0 || (flags[AW] & O_NONBLOCK) || (flags[BW] & O_NONBLOCK) == 0 ||
        (flags[BR] & O_NONBLOCK) || (flags[CR] & O_NONBLOCK) || (flags[CX] & O_NONBLOCK) == 0 ||
        (flags[PR] & O_DIRECT) || (flags[PW] & O_DIRECT) == 0)
        FAIL("setup: the flags are not what was asked for");
    revents_W = poll1(fd[WR], POLLIN);
    revents_E = poll1(fd[EW], POLLOUT);
    revents_CR = poll1(fd[CR], POLLIN);
    say("POLL widowed=0x%x readerless=0x%x empty=0x%x", revents_W, revents_E, revents_CR);
    if (revents_W != (POLLIN | POLLHUP) || revents_E != (POLLOUT | POLLERR) || revents_CR != 0)
        FAIL("setup: poll gives 0x%x 0x%x 0x%x", revents_W, revents_E, revents_CR);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            char b[16];
            expect_read(AR, qa, sizeof b);
            errno = 0;
            if (read(fd[AR], b, sizeof b) != -1 || errno != EAGAIN)
                FAIL("A's read end (O_NONBLOCK) on an empty pipe: expected EAGAIN, got %s", strerror(errno));
            expect_read(BR, qb, sizeof b);
            expect_read(PR, "abc", sizeof b);   /* packet mode: one write, one read */
            expect_read(PR, "def", sizeof b);
            expect_read(WR, "widow", sizeof b);
            expect_read(WR, "", sizeof b);      /* EOF: no writer */
            static char page[4096];
            long total = 0;
            ssize_t r;
            while ((r = write(fd[FW], page, sizeof page)) > 0)
                total += r;
            if (r < 0 && errno != EAGAIN)
                FAIL("filling F: %s", strerror(errno));
            if (total != 1 << 20)
                FAIL("F took %ld bytes before EAGAIN, expected %d", total, 1 << 20);
            /* B's write end is non-blocking too */
            while ((r = write(fd[BW], page, sizeof page)) > 0) {}
            if (errno != EAGAIN)
                FAIL("filling B: expected EAGAIN, got %s", strerror(errno));
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        char c = (char)('a' + n % 26), got = 0;
        put(CW, &c, 1);
        if (read(fd[CX], &got, 1) != 1 || got != c)
            FAIL("tick %ld: reading C through the reopened fd: expected '%c', got '%c' (%s)", n, c, got, strerror(errno));
        c = (char)('A' + n % 26);
        put(CW, &c, 1);
        if (read(fd[CR], &got, 1) != 1 || got != c)
            FAIL("tick %ld: reading C through the original fd: expected '%c', got '%c' (%s)", n, c, got, strerror(errno));
        errno = 0;
        if (read(fd[CX], &got, 1) != -1 || errno != EAGAIN)
            FAIL("tick %ld: the reopened (O_NONBLOCK) end of empty C: expected EAGAIN, got %s", n, strerror(errno));
        say("tick %ld", n);
        tick_sleep();
    }
}
