/* eintr: threads blocked in calls that the kernel ends with EINTR when the process is stopped and
 * continued (see man 7 signal, "Interruption of system calls and library functions by stop
 * signals"), although no signal handler ever runs. The program is sent no signal, so none of them
 * may ever see EINTR: a checkpoint (freeze, dump) and a restore must not let one through.
 * argv[1] = workdir. Protocol as in README.md. SIGUSR2 is blocked in every thread.
 *  thread 1 (main): epoll_wait(timeout -1) on a timerfd firing every 20 ms; this is the tick.
 *  thread 2: epoll_wait(timeout 10 s) on an eventfd nobody writes (returns 0 every 10 s).
 *  thread 3: sigtimedwait for SIGUSR2, never sent (10 s; EAGAIN).
 *  thread 4: recv on a socketpair end with SO_RCVTIMEO 10 s (EAGAIN every 10 s).
 *  thread 5: semtimedop(-1) on a System V semaphore at 0 (IPC_PRIVATE; 10 s; EAGAIN). The set is
 *            removed at the end and on a FAIL (atexit); a killed run leaves it (prints "SEMID <id>").
 *  thread 6: read() on an inotify fd watching <wd>/watched for IN_CREATE (nothing is created there).
 *  thread 7: epoll_pwait(timeout 10 s) with a signal mask, on another eventfd nobody writes.
 * Any EINTR: "FAIL thread <k>: <call> returned EINTR"; any other unexpected result is a FAIL too.
 * Each thread counts the calls it has started; ticks print "tick <n> calls=<c1>,...,<c7>". Each tick
 * and at the end, every thread must still exist (tgkill 0; 7 entries in /proc/self/task).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include "target.h"

#define NT 7
static volatile long calls[NT + 1];
static volatile pid_t tids[NT + 1];
static volatile int ending;
static int ep2, ep7, sock, sem = -1, ino;
static sigset_t usr2;

static void remove_sem(void)
{
    ending = 1;
    if (sem >= 0)
        semctl(sem, 0, IPC_RMID);
}

static void started(int k) { __atomic_add_fetch(&calls[k], 1, __ATOMIC_RELAXED); }

static void check_result(int k, const char *call, long r, int err, long want_r, int want_err)
{
    if (r < 0 && err == EINTR)
        FAIL("thread %d: %s returned EINTR (call %ld)", k, call, calls[k]);
    if (ending)
        pause();
    if (r != want_r || (r < 0 && err != want_err))
        FAIL("thread %d: %s returned %ld (%s), expected %ld (%s)", k, call, r, r < 0 ? strerror(err) : "", want_r,
             want_r < 0 ? strerror(want_err) : "");
}

static void *run(void *arg)
{
    int k = (int)(intptr_t)arg;
    tids[k] = (pid_t)syscall(SYS_gettid);
    for (;;) {
        struct epoll_event ev;
        struct timespec ten = { 10, 0 };
        siginfo_t si;
        char b[4096];
        long r;
        started(k);
        switch (k) {
        case 2:
            r = epoll_wait(ep2, &ev, 1, 10000);
            check_result(k, "epoll_wait", r, errno, 0, 0);
            break;
        case 3:
            r = sigtimedwait(&usr2, &si, &ten);
            check_result(k, "sigtimedwait", r, errno, -1, EAGAIN);
            break;
        case 4:
            r = recv(sock, b, sizeof b, 0);
            check_result(k, "recv", r, errno, -1, EAGAIN);
            break;
        case 5: {
            struct sembuf op = { 0, -1, 0 };
            r = semtimedop(sem, &op, 1, &ten);
            check_result(k, "semtimedop", r, errno, -1, EAGAIN);
            break;
        }
        case 6:
            r = read(ino, b, sizeof b);
            check_result(k, "read(inotify)", r, errno, -2, 0); /* never returns */
            break;
        case 7: {
            sigset_t mask;
            sigfillset(&mask);
            sigdelset(&mask, SIGTERM);
            r = epoll_pwait(ep7, &ev, 1, 10000, &mask);
            check_result(k, "epoll_pwait", r, errno, 0, 0);
            break;
        }
        }
    }
    return NULL;
}

static void check_threads(long n)
{
    for (int k = 1; k <= NT; k++)
        if (tids[k] <= 0 || syscall(SYS_tgkill, getpid(), tids[k], 0) != 0)
            FAIL("tick %ld: thread %d (tid %d) is gone: %s", n, k, tids[k], strerror(errno));
    DIR *d = opendir("/proc/self/task");
    int count = 0;
    if (!d)
        FAIL("opendir /proc/self/task: %s", strerror(errno));
    for (struct dirent *e; (e = readdir(d));)
        count += e->d_name[0] != '.';
    closedir(d);
    if (count != NT)
        FAIL("tick %ld: %d threads, expected %d", n, count, NT);
}

static int event_epoll(void)
{
    int e = epoll_create1(0), f = eventfd(0, 0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = f };
    if (e < 0 || f < 0 || epoll_ctl(e, EPOLL_CTL_ADD, f, &ev) != 0)
        FAIL("epoll/eventfd: %s", strerror(errno));
    return e;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: eintr WORKDIR");
    char stop[4200], watched[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    snprintf(watched, sizeof watched, "%s/watched", argv[1]);
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);

    int tfd = timerfd_create(CLOCK_MONOTONIC, 0), ep1 = epoll_create1(0);
    struct itimerspec its = { { 0, 20 * 1000 * 1000 }, { 0, 20 * 1000 * 1000 } };
    struct epoll_event tev = { .events = EPOLLIN, .data.fd = tfd };
    if (tfd < 0 || ep1 < 0 || timerfd_settime(tfd, 0, &its, NULL) || epoll_ctl(ep1, EPOLL_CTL_ADD, tfd, &tev))
        FAIL("timerfd: %s", strerror(errno));
    ep2 = event_epoll();
    ep7 = event_epoll();
    int sp[2];
    struct timeval tv = { 10, 0 };
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || setsockopt(sp[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv))
        FAIL("socketpair: %s", strerror(errno));
    sock = sp[0];
    sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    if (sem < 0)
        FAIL("semget: %s", strerror(errno));
    atexit(remove_sem);
    say("SEMID %d", sem);
    if ((mkdir(watched, 0755) != 0 && errno != EEXIST) || (ino = inotify_init1(0)) < 0 ||
        inotify_add_watch(ino, watched, IN_CREATE) < 0)
        FAIL("inotify on %s: %s", watched, strerror(errno));

    tids[1] = getpid();
    for (int k = 2; k <= NT; k++) {
        pthread_t t;
        if (pthread_create(&t, NULL, run, (void *)(intptr_t)k) != 0)
            FAIL("pthread_create failed");
    }
    for (int i = 0; i < 1000; i++) { /* every thread has started its first call */
        int all = 1;
        for (int k = 2; k <= NT; k++)
            all &= calls[k] > 0;
        if (all)
            break;
        usleep(1000);
    }

    say("READY");
    for (long n = 1;; n++) {
        check_threads(n);
        if (access(stop, F_OK) == 0) {
            say("PASS %ld", n - 1);
            exit(0); /* atexit removes the semaphore set */
        }
        say("tick %ld calls=%ld,%ld,%ld,%ld,%ld,%ld,%ld", n, calls[1], calls[2], calls[3], calls[4], calls[5], calls[6],
            calls[7]);
        struct epoll_event ev;
        started(1);
        int r = epoll_wait(ep1, &ev, 1, -1);
        if (r < 0 && errno == EINTR)
            FAIL("thread 1: epoll_wait returned EINTR (call %ld)", calls[1]);
        uint64_t exp;
        if (r != 1 || ev.data.fd != tfd || read(tfd, &exp, sizeof exp) != sizeof exp)
            FAIL("thread 1: epoll_wait on the timerfd returned %d (%s)", r, strerror(errno));
    }
}
