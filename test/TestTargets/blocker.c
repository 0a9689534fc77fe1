/* blocker.c - checkpoint/restore target that is almost always inside a
 * blocking, restartable syscall with a timeout.
 *
 * usage: blocker <workdir> <sleep|futex|poll>
 *   sleep: clock_nanosleep(CLOCK_MONOTONIC, relative 300 ms)  -> expect 0
 *   futex: FUTEX_WAIT_PRIVATE on a word that stays 0, 300 ms -> expect ETIMEDOUT
 *   poll : poll(POLLIN) on a private pipe nobody writes, 300 ms -> expect 0
 * Protocol: READY, then "tick <n> dt_ms=<x>" after each wait. If
 * <workdir>/stop exists: final checks, "PASS <n>", exit 0.
 *
 * The wait is the whole tick (no extra sleep), so a checkpoint interrupts it
 * with high probability. The kernel restarts these calls transparently
 * (ERESTART_RESTARTBLOCK / restart_syscall); a restore that gets this wrong
 * shows up here as EINTR, an early return (dt < 250 ms) or a wrong result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "target.h"

enum { M_SLEEP, M_FUTEX, M_POLL };
static int mode;
static uint32_t futex_word;     /* must stay 0 */
static int pfd[2] = { -1, -1 }; /* poll mode: both ends kept open, never written */

static int64_t now_ns(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t)) FAIL("clock_gettime: %s", strerror(errno));
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void check_state(void) {
    if (futex_word != 0) FAIL("futex word expected 0 got %u", futex_word);
    if (mode != M_POLL) return;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(pfd[i], F_GETFL);
        if (fl < 0) FAIL("pipe fd %d (end %d) invalid: %s", pfd[i], i, strerror(errno));
        if ((fl & O_ACCMODE) != (i ? O_WRONLY : O_RDONLY)) FAIL("pipe fd %d access mode %#x", pfd[i], fl);
    }
    int avail = -1;
    if (ioctl(pfd[0], FIONREAD, &avail)) FAIL("FIONREAD: %s", strerror(errno));
    if (avail != 0) FAIL("pipe expected 0 bytes got %d", avail);
}

/* One blocking wait of 300 ms. The result must be the plain timeout. */
static void wait_once(void) {
    if (mode == M_SLEEP) {
        struct timespec ts = { 0, 300 * 1000 * 1000 };
        int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        if (r) FAIL("clock_nanosleep returned %d (%s)", r, strerror(r));
    } else if (mode == M_FUTEX) {
        struct timespec ts = { 0, 300 * 1000 * 1000 };
        long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
        if (r != -1 || errno != ETIMEDOUT)
            FAIL("futex wait returned %ld errno %d (%s), expected ETIMEDOUT", r, r ? errno : 0,
                 r ? strerror(errno) : "none");
    } else {
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        int r = poll(&p, 1, 300);
        if (r != 0) FAIL("poll returned %d revents %#x errno %d (%s), expected 0", r, p.revents,
                         r < 0 ? errno : 0, r < 0 ? strerror(errno) : "none");
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { say("FAIL usage: blocker <workdir> <sleep|futex|poll>"); return 1; }
    if (!strcmp(argv[2], "sleep")) mode = M_SLEEP;
    else if (!strcmp(argv[2], "futex")) mode = M_FUTEX;
    else if (!strcmp(argv[2], "poll")) mode = M_POLL;
    else FAIL("unknown mode \"%s\" (want sleep, futex or poll)", argv[2]);
    char stop_path[4096];
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    if (mode == M_POLL && pipe2(pfd, O_CLOEXEC)) FAIL("pipe2: %s", strerror(errno));
    check_state();
    say("READY");

    for (unsigned long n = 1;; n++) {
        if (access(stop_path, F_OK) == 0) {
            check_state();
            say("PASS %lu", n - 1);
            exit(0);
        } else if (errno != ENOENT) FAIL("access(%s): %s", stop_path, strerror(errno));
        int64_t t0 = now_ns();
        wait_once();
        int64_t dt = (now_ns() - t0) / 1000000;
        if (dt < 250) FAIL("%s returned after %lld ms, expected >= 250", argv[2], (long long)dt);
        check_state();
        say("tick %lu dt_ms=%lld", n, (long long)dt);
    }
}
