/* epollstale: an epoll set whose watches are keyed by fd numbers that no longer mean what they did.
 * argv[1] = workdir. Protocol as in README.md. An epoll watch is keyed by (file, fd number) and lives
 * as long as the file does, whatever happens to the number:
 *  - P1: pipe read end registered as fd r1 (EPOLLIN, data 111), dup'ed to d1, r1 closed (r1 is free).
 *  - P2: pipe read end registered as fd r2 (data 222), dup'ed to d2, r2 closed, and the read end of
 *    another pipe P4 (never registered) put at number r2.
 *  - an eventfd registered EPOLLIN|EPOLLET|EPOLLONESHOT (data 444), left disarmed between ticks.
 *  - P3: a pipe read end registered normally (data 333).
 *  - a second epoll set watching the first (EPOLLIN, data 999).
 * Each tick: /proc/self/fdinfo of both sets lists the same (tfd, events, data) as at setup (so the
 * watches are still under the numbers r1 and r2); EPOLL_CTL_MOD gives ENOENT for r2 (now P4), d1 and
 * d2 (the key is the number too) and EBADF for r1. Then a byte goes into P1, P2, P3 and P4 and 1 into
 * the eventfd: the second set reports 999, the first reports exactly 111, 222 and 333 (not P4, not
 * the disarmed eventfd); once the pipes are drained both report nothing; rearming the eventfd with
 * EPOLL_CTL_MOD reports 444 once, and it is disarmed again. Prints the fd numbers at setup.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "target.h"

static int ep, ep2, r1, d1, r2, d2, w1, w2, p3r, p3w, p4w, efd;
#define ONESHOT (EPOLLIN | EPOLLET | EPOLLONESHOT)

struct watch { int tfd; unsigned events; unsigned long long data; };
static struct watch set0[8], nest0[2];
static int nset0, nnest0;

static int cmpw(const void *a, const void *b) { return ((const struct watch *)a)->tfd - ((const struct watch *)b)->tfd; }

static int fdinfo(int e, struct watch *w, int max)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", e);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t len = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (len < 0)
        FAIL("reading %s: %s", path, strerror(errno));
    close(f);
    buf[len] = 0;
    int n = 0;
    for (char *p = strstr(buf, "tfd:"); p; p = strstr(p + 1, "tfd:")) {
        if (n == max)
            FAIL("%s: more than %d watches", path, max);
        if (sscanf(p, "tfd: %d events: %x data: %llx", &w[n].tfd, &w[n].events, &w[n].data) != 3)
            FAIL("%s: cannot parse '%.60s'", path, p);
        n++;
    }
    qsort(w, (size_t)n, sizeof *w, cmpw);
    return n;
}

static void check_fdinfo(long n, int e, const struct watch *want, int nwant)
{
    struct watch w[8];
    int got = fdinfo(e, w, 8);
    if (got != nwant)
        FAIL("tick %ld: epoll fd %d has %d watches, had %d", n, e, got, nwant);
    for (int i = 0; i < got; i++)
        if (w[i].tfd != want[i].tfd || w[i].events != want[i].events || w[i].data != want[i].data)
            FAIL("tick %ld: epoll fd %d watch %d: tfd %d events 0x%x data %llu, was tfd %d events 0x%x data %llu", n,
                 e, i, w[i].tfd, w[i].events, w[i].data, want[i].tfd, want[i].events, want[i].data);
}

static void add(int e, int fd, unsigned events, uint64_t data)
{
    struct epoll_event ev = { .events = events, .data.u64 = data };
    if (epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev) != 0)
        FAIL("EPOLL_CTL_ADD fd %d: %s", fd, strerror(errno));
}

static int mod(int fd, unsigned events, uint64_t data)
{
    struct epoll_event ev = { .events = events, .data.u64 = data };
    errno = 0;
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : errno;
}

/* collects what epoll fd e reports now as a sorted list of data values (0-terminated) */
static int events(int e, uint64_t *got, int timeout)
{
    struct epoll_event ev[8];
    int n = epoll_wait(e, ev, 8, timeout);
    if (n < 0)
        FAIL("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        got[i] = ev[i].data.u64;
        if (ev[i].events != EPOLLIN)
            FAIL("epoll fd %d reported events 0x%x for data %" PRIu64 ", expected EPOLLIN", e, ev[i].events, got[i]);
    }
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int j = i; j > 0 && got[j - 1] > got[j]; j--) {
            uint64_t t = got[j];
            got[j] = got[j - 1];
            got[j - 1] = t;
        }
    got[n] = 0;
    return n;
}

static void list(char *out, size_t size, const uint64_t *v)
{
    out[0] = 0;
    for (int i = 0; v[i] && strlen(out) + 24 < size; i++)
        sprintf(out + strlen(out), " %" PRIu64, v[i]);
}

static void expect_events(long n, const char *what, int e, int timeout, const uint64_t *want)
{
    uint64_t got[9];
    int k = events(e, got, timeout);
    for (int i = 0; i <= k; i++)
        if (got[i] != want[i]) {
            char g[200], w[200];
            list(g, sizeof g, got);
            list(w, sizeof w, want);
            FAIL("tick %ld: %s: got events [%s ], expected [%s ]", n, what, g, w);
        }
}

static void put(int fd, const char *what)
{
    if (write(fd, "x", 1) != 1)
        FAIL("write into %s: %s", what, strerror(errno));
}

static void take(int fd, const char *what)
{
    char c;
    if (read(fd, &c, 1) != 1)
        FAIL("read from %s: %s", what, strerror(errno));
}

static void round_trip(long n)
{
    check_fdinfo(n, ep, set0, nset0);
    check_fdinfo(n, ep2, nest0, nnest0);
    int e;
    if ((e = mod(r2, EPOLLIN, 222)) != ENOENT)
        FAIL("tick %ld: EPOLL_CTL_MOD of fd %d (now P4): %s, expected ENOENT", n, r2, strerror(e));
    if ((e = mod(d1, EPOLLIN, 111)) != ENOENT || (e = mod(d2, EPOLLIN, 222)) != ENOENT)
        FAIL("tick %ld: EPOLL_CTL_MOD of a dup of a watched fd: %s, expected ENOENT", n, strerror(e));
    if ((e = mod(r1, EPOLLIN, 111)) != EBADF)
        FAIL("tick %ld: EPOLL_CTL_MOD of closed fd %d: %s, expected EBADF", n, r1, strerror(e));

    put(w1, "P1");
    put(w2, "P2");
    put(p3w, "P3");
    put(p4w, "P4");
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) != sizeof one)
        FAIL("write eventfd: %s", strerror(errno));
    static const uint64_t nested[] = { 999, 0 }, pipes[] = { 111, 222, 333, 0 }, ev444[] = { 444, 0 }, none[] = { 0 };
    expect_events(n, "the nested set", ep2, 0, nested);
    expect_events(n, "the set", ep, 100, pipes);
    take(d1, "P1");
    take(d2, "P2");
    take(p3r, "P3");
    take(r2, "P4");
    expect_events(n, "the set, drained", ep, 0, none);
    expect_events(n, "the nested set, drained", ep2, 0, none);
    if ((e = mod(efd, ONESHOT, 444)) != 0)
        FAIL("tick %ld: rearming the eventfd: %s", n, strerror(e));
    expect_events(n, "the set, eventfd rearmed", ep, 0, ev444);
    expect_events(n, "the set, eventfd fired once", ep, 0, none);
    if (read(efd, &one, sizeof one) != sizeof one || one != 1)
        FAIL("tick %ld: the eventfd held %" PRIu64 ", expected 1", n, one);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: epollstale WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    /* everything is allocated first; the dups go to 20 and up: fd numbers freed later stay free */
    ep = epoll_create1(0);
    ep2 = epoll_create1(0);
    int p1[2], p2[2], p3[2], p4[2];
    if (pipe(p1) || pipe(p2) || pipe(p3) || pipe(p4))
        FAIL("pipe: %s", strerror(errno));
    efd = eventfd(0, EFD_NONBLOCK);
    r1 = p1[0], w1 = p1[1], r2 = p2[0], w2 = p2[1], p3r = p3[0], p3w = p3[1], p4w = p4[1];
    add(ep, r1, EPOLLIN, 111);
    add(ep, r2, EPOLLIN, 222);
    add(ep, p3r, EPOLLIN, 333);
    add(ep, efd, ONESHOT, 444);
    d1 = fcntl(r1, F_DUPFD, 20);
    d2 = fcntl(r2, F_DUPFD, 20);
    if (d1 < 0 || d2 < 0 || close(r1) || close(r2) || dup2(p4[0], r2) != r2 || close(p4[0]))
        FAIL("setup: dup/close: %s", strerror(errno));
    add(ep2, ep, EPOLLIN, 999);
    /* fire the eventfd once, so it is disarmed like between ticks */
    uint64_t one = 1, got[9];
    if (write(efd, &one, sizeof one) != sizeof one || events(ep, got, 0) != 1 || got[0] != 444 ||
        read(efd, &one, sizeof one) != sizeof one)
        FAIL("setup: the eventfd did not fire once");
    if (fcntl(r1, F_GETFD) != -1)
        FAIL("setup: fd %d (r1) should be free", r1);
    nset0 = fdinfo(ep, set0, 8);
    nnest0 = fdinfo(ep2, nest0, 2);
    say("FDS ep=%d ep2=%d r1=%d(closed) d1=%d r2=%d(now P4) d2=%d p3=%d eventfd=%d", ep, ep2, r1, d1, r2, d2, p3r, efd);
    for (int i = 0; i < nset0; i++)
        say("WATCH tfd=%d events=0x%x data=%llu", set0[i].tfd, set0[i].events, set0[i].data);
    if (nset0 != 4 || set0[0].tfd != r1 || nnest0 != 1)
        FAIL("setup: the set lists %d watches, the first on %d", nset0, set0[0].tfd);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            round_trip(n);
            say("PASS %ld", n - 1);
            return 0;
        }
        round_trip(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
