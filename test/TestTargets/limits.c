/* limits: an interval timer, resource limits and no_new_privs survive a restore.
 * Protocol as in README.md (argv[1] = workdir, READY, "tick <n> alarms=<a>", PASS on <workdir>/stop).
 * argv[2] = "posixtimer" instead arms POSIX timers (timer_create): one of 50 ms sending SIGUSR2 with
 * a value the handler checks (counted as alarms), and a far one with SIGEV_NONE; both must survive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "target.h"

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) { (void)sig; alarms++; }

static volatile sig_atomic_t bad_value;
static timer_t periodic, far;

static void on_timer(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)ctx;
    if (si->si_value.sival_int != 77 || si->si_code != SI_TIMER)
        bad_value = 1;
    alarms++;
}


#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)

static void check_limits(void)
{
    struct rlimit r;
    CHECK(getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur == 100 && r.rlim_max == 200,
          "RLIMIT_NOFILE %lu/%lu, expected 100/200", (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max);
    CHECK(getrlimit(RLIMIT_CORE, &r) == 0 && r.rlim_cur == 0 && r.rlim_max == 4096,
          "RLIMIT_CORE %lu/%lu, expected 0/4096", (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max);
    CHECK(getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur == 4 << 20,
          "RLIMIT_STACK %lu, expected 4 MiB", (unsigned long)r.rlim_cur);
    CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs is not set");
    struct itimerval t;
    CHECK(getitimer(ITIMER_REAL, &t) == 0 && t.it_interval.tv_sec == 0 && t.it_interval.tv_usec == 50000,
          "ITIMER_REAL interval %ld.%06ld, expected 0.050000", (long)t.it_interval.tv_sec, (long)t.it_interval.tv_usec);
}

static void check_timers(void)
{
    struct itimerspec its;
    CHECK(timer_gettime(periodic, &its) == 0 && its.it_interval.tv_nsec == 50 * 1000 * 1000,
          "periodic POSIX timer interval %ld ns", its.it_interval.tv_nsec);
    CHECK(timer_gettime(far, &its) == 0 && its.it_value.tv_sec > 50 && its.it_value.tv_sec <= 100,
          "far POSIX timer has %ld s left", (long)its.it_value.tv_sec);
    CHECK(!bad_value, "a timer signal came with the wrong value or code");
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: limits WORKDIR [posixtimer]");
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    if (argc > 2 && strcmp(argv[2], "posixtimer") == 0) {
        struct sigaction sa = {.sa_sigaction = on_timer, .sa_flags = SA_SIGINFO | SA_RESTART};
        sigaction(SIGUSR2, &sa, NULL);
        struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2, .sigev_value.sival_int = 77};
        struct itimerspec its = {.it_interval = {0, 50 * 1000 * 1000}, .it_value = {0, 50 * 1000 * 1000}};
        CHECK(timer_create(CLOCK_MONOTONIC, &ev, &periodic) == 0 && timer_settime(periodic, 0, &its, NULL) == 0, "timer_create: %s", strerror(errno));
        struct sigevent none = {.sigev_notify = SIGEV_NONE};
        struct itimerspec later = {.it_value = {100, 0}};
        CHECK(timer_create(CLOCK_MONOTONIC, &none, &far) == 0 && timer_settime(far, 0, &later, NULL) == 0, "timer_create: %s", strerror(errno));
    } else {
        struct rlimit nofile = {100, 200}, core = {0, 4096}, stack = {4 << 20, RLIM_INFINITY};
        CHECK(setrlimit(RLIMIT_NOFILE, &nofile) == 0 && setrlimit(RLIMIT_CORE, &core) == 0 && setrlimit(RLIMIT_STACK, &stack) == 0,
              "setrlimit: %s", strerror(errno));
        CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval t = {{0, 50000}, {0, 50000}};
        CHECK(setitimer(ITIMER_REAL, &t, NULL) == 0, "setitimer: %s", strerror(errno));
    }
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            if (argc <= 2)
                check_limits();
            else
                check_timers();
            say("PASS %ld", n - 1);
            return 0;
        }
        if (argc <= 2)
            check_limits();
        else
            check_timers();
        say("tick %ld alarms=%d", n, (int)alarms);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
}
