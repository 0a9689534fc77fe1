/* epollet: an epoll set's ready list survives a restore exactly: an edge-triggered watch reports an
 * event once, however often the process is checkpointed and restored, and one whose event it has not
 * collected yet still reports it. The set holds:
 *  A - a pipe, edge-triggered, with bytes in it since the start, reported once then and never read:
 *      it must never be reported again;
 *  B - a pipe, edge-triggered: on odd ticks a byte is written, the tick sleeps, then epoll_wait must
 *      report B (once), and B is drained; on even ticks it must not report B;
 *  C - an eventfd, level-triggered, its counter never read: reported every time;
 *  D - a pipe, edge-triggered and one-shot, armed, empty until stop: reported once then.
 * Each tick two epoll_waits (timeout 0) check exactly that. Protocol as in README.md (argv[1] =
 * workdir, READY, "tick <n>", PASS on <workdir>/stop).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "target.h"

#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)
enum { A = 1, B = 2, C = 4, D = 8 };

static int ep;

/* What one epoll_wait reports, as a set of the bits above (each watch's data is its bit). */
static int reported(void)
{
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, 0), seen = 0;
    CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        CHECK(!(seen & (int)ev[i].data.u64), "watch %d reported twice in one epoll_wait", (int)ev[i].data.u64);
        seen |= (int)ev[i].data.u64;
    }
    return seen;
}

static void watch(int fd, uint32_t events, int bit)
{
    struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)bit };
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl(ADD) %d: %s", bit, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 2) FAIL("usage: epollet <workdir>");
    char stop[512];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    int a[2], b[2], d[2];
    CHECK(pipe2(a, O_NONBLOCK) == 0 && pipe2(b, O_NONBLOCK) == 0 && pipe2(d, O_NONBLOCK) == 0, "pipe2: %s", strerror(errno));
    int c = eventfd(1, EFD_NONBLOCK);
    CHECK(c >= 0, "eventfd: %s", strerror(errno));
    ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0, "epoll_create1: %s", strerror(errno));
    CHECK(write(a[1], "a", 1) == 1, "write A: %s", strerror(errno));
    watch(a[0], EPOLLIN | EPOLLET, A);
    watch(b[0], EPOLLIN | EPOLLET, B);
    watch(c, EPOLLIN, C);
    watch(d[0], EPOLLIN | EPOLLET | EPOLLONESHOT, D);
    int first = reported();
    CHECK(first == (A | C), "first epoll_wait reported %x, expected %x", first, A | C);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            CHECK(write(d[1], "d", 1) == 1, "write D: %s", strerror(errno));
            int got = reported();
            CHECK(got == (C | D), "at stop: reported %x, expected %x (C, D)", got, C | D);
            got = reported();
            CHECK(got == C, "at stop, again: reported %x, expected %x (C)", got, C);
            say("PASS %ld", n - 1);
            return 0;
        }
        int odd = n % 2;
        if (odd) CHECK(write(b[1], "b", 1) == 1, "write B: %s", strerror(errno));
        tick_sleep(); /* a checkpoint in here: with B's event waiting (odd ticks) or collected (even) */
        int got = reported();
        int want = odd ? (B | C) : C;
        CHECK(got == want, "tick %ld: reported %x, expected %x", n, got, want);
        got = reported();
        CHECK(got == C, "tick %ld, again: reported %x, expected %x (C)", n, got, C);
        char buf[16];
        while (read(b[0], buf, sizeof buf) > 0) {}
        say("tick %ld", n);
    }
}
