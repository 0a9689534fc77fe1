/* pidns: a family of processes that counts on its ids (amber run --isolate pid: PID 1 of its own
 * PID namespace, and the same ids there after a restore, whatever ids the host has in use then).
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 * Before READY it prints "PIDS <self> <child> <grandchild> <thread> <zombie>", the ids it sees.
 *  - A child, which forks a grandchild: each checks every tick that getpid() and getppid() are what
 *    they were (the parent links come back with the ids).
 *  - A thread, which checks that gettid() is what it was, and two more that only sleep (PID 1 with
 *    several threads ends only once every other thread of its namespace is collected).
 *  - A zombie: a child that exited with status 7 and is reaped only at the end, by its id.
 *  - Every tick the parent checks its own id, and that kill(id, 0) still finds the child and the
 *    grandchild by theirs.
 * At the end the parent kills the child and reaps it by its id; PID 1 also reaps the grandchild, which
 * it then has inherited (an orphan goes to its namespace's PID 1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "target.h"

static pid_t thread_tid;
static atomic_long thread_ticks;

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        tick_sleep();
    return NULL;
}

static void *thread_main(void *arg)
{
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    for (;;) {
        pid_t now = (pid_t)syscall(SYS_gettid);
        if (now != thread_tid)
            FAIL("thread: gettid() is %d, was %d", now, thread_tid);
        atomic_fetch_add(&thread_ticks, 1);
        tick_sleep();
    }
    return NULL;
}

/* A child's life: its id and its parent's stay what they were. */
static void keep_checking(pid_t self, pid_t parent, const char *who)
{
    for (;;) {
        if (getpid() != self)
            FAIL("%s: getpid() is %d, was %d", who, getpid(), self);
        if (getppid() != parent)
            FAIL("%s: getppid() is %d, was %d", who, getppid(), parent);
        tick_sleep();
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: pidns WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    pid_t self = getpid();

    int ids[2];
    if (pipe(ids) != 0)
        FAIL("pipe: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        FAIL("fork: %s", strerror(errno));
    if (child == 0) {
        pid_t me = getpid();
        pid_t grandchild = fork();
        if (grandchild < 0)
            FAIL("fork: %s", strerror(errno));
        if (grandchild == 0)
            keep_checking(getpid(), me, "grandchild");
        if (write(ids[1], &grandchild, sizeof grandchild) != sizeof grandchild)
            FAIL("write: %s", strerror(errno));
        keep_checking(me, self, "child");
    }
    pid_t grandchild;
    if (read(ids[0], &grandchild, sizeof grandchild) != sizeof grandchild)
        FAIL("read: %s", strerror(errno));
    close(ids[0]);
    close(ids[1]);

    pthread_t thread;
    if (pthread_create(&thread, NULL, thread_main, NULL) != 0)
        FAIL("pthread_create");
    while (atomic_load(&thread_ticks) == 0)
        tick_sleep();
    pthread_t sleepers[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&sleepers[i], NULL, sleeper, NULL) != 0)
            FAIL("pthread_create");

    pid_t zombie = fork();
    if (zombie < 0)
        FAIL("fork: %s", strerror(errno));
    if (zombie == 0)
        _exit(7);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, zombie, &info, WEXITED | WNOWAIT) != 0) // exited, left unreaped
        FAIL("waitid: %s", strerror(errno));

    say("PIDS %d %d %d %d %d", self, child, grandchild, thread_tid, zombie);
    say("READY");
    for (long n = 1;; n++) {
        if (getpid() != self)
            FAIL("getpid() is %d, was %d", getpid(), self);
        if (kill(child, 0) != 0 || kill(grandchild, 0) != 0)
            FAIL("kill(%d, 0) or kill(%d, 0): %s", child, grandchild, strerror(errno));
        long before = atomic_load(&thread_ticks);
        say("tick %ld", n);
        if (access(stop, F_OK) == 0) {
            for (int i = 0; i < 50 && atomic_load(&thread_ticks) == before; i++)
                tick_sleep();
            if (atomic_load(&thread_ticks) == before)
                FAIL("the thread stopped ticking");
            int status;
            kill(child, SIGKILL);
            pid_t got = waitpid(child, &status, 0);
            if (got != child || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                FAIL("waitpid(%d) gave %d, status 0x%x", child, got, status);
            got = waitpid(zombie, &status, 0);
            if (got != zombie || !WIFEXITED(status) || WEXITSTATUS(status) != 7)
                FAIL("waitpid(%d) (the zombie) gave %d, status 0x%x", zombie, got, status);
            kill(grandchild, SIGKILL);
            if (self == 1) {
                got = waitpid(grandchild, &status, 0);
                if (got != grandchild)
                    FAIL("waitpid(%d) (the orphaned grandchild) gave %d: %s", grandchild, got, strerror(errno));
            }
            say("PASS");
            return 0;
        }
        tick_sleep();
    }
}
