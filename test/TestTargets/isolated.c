/* isolated: a program that counts on namespaces of its own (amber run --isolate uts,ipc).
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 * Before READY it prints "HOST <hostname>" and "IDS <shmid> <semid>".
 *  - It makes, with IPC_EXCL, a System V shared memory segment and a semaphore set under one fixed
 *    key (0x414d4252): two of these can run at once only if each has an IPC namespace of its own, and
 *    a restore must make them again in the program's namespace, not the host's.
 *  - A child (forked after the objects are made) shares the segment: every tick the parent writes n
 *    to it and ups the semaphore, the child waits on the semaphore and answers n + 1 in the segment.
 *  - Every tick: the host name is still the one it started with (a restore must bring back the
 *    namespace's), the segment still holds its pattern, and its ids are still the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>
#include "target.h"

#define KEY 0x414d4252
#define WORDS 4096

struct area {
    volatile long asked, answered;
    uint64_t pattern[WORDS];
};

static int sem;

static void op(int delta)
{
    struct sembuf b = { 0, (short)delta, 0 };
    while (semop(sem, &b, 1) != 0)
        if (errno != EINTR)
            FAIL("semop(%d): %s", delta, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: isolated WORKDIR");
    char stop[4200], host[128];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    if (gethostname(host, sizeof host) != 0)
        FAIL("gethostname: %s", strerror(errno));
    int shm = shmget(KEY, sizeof(struct area), IPC_CREAT | IPC_EXCL | 0600);
    if (shm < 0)
        FAIL("shmget(0x%x, IPC_EXCL): %s (another program's segment in the same IPC namespace?)", KEY, strerror(errno));
    sem = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
    if (sem < 0)
        FAIL("semget(0x%x, IPC_EXCL): %s", KEY, strerror(errno));
    struct area *a = shmat(shm, NULL, 0);
    if (a == (void *)-1)
        FAIL("shmat: %s", strerror(errno));
    for (int i = 0; i < WORDS; i++)
        a->pattern[i] = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ KEY;
    pid_t child = fork();
    if (child < 0)
        FAIL("fork: %s", strerror(errno));
    if (child == 0) {
        for (;;) {
            op(-1);
            a->answered = a->asked + 1;
        }
    }
    say("HOST %s", host);
    say("IDS %d %d", shm, sem);
    say("READY");
    for (long n = 1;; n++) {
        char now[128];
        if (gethostname(now, sizeof now) != 0 || strcmp(now, host) != 0)
            FAIL("host name is '%s', was '%s'", now, host);
        if (shmget(KEY, 0, 0) != shm || semget(KEY, 0, 0) != sem)
            FAIL("key 0x%x now names segment %d and set %d, was %d and %d", KEY, shmget(KEY, 0, 0), semget(KEY, 0, 0), shm, sem);
        for (int i = 0; i < WORDS; i++)
            if (a->pattern[i] != ((uint64_t)i * 0x9e3779b97f4a7c15ull ^ KEY))
                FAIL("segment word %d changed", i);
        a->asked = n;
        op(1);
        for (int waited = 0; a->answered != n + 1; waited++) {
            if (waited > 5000)
                FAIL("the child did not answer %ld (answered %ld)", n, a->answered);
            usleep(1000);
        }
        if (access(stop, F_OK) == 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            shmdt(a);
            shmctl(shm, IPC_RMID, NULL);
            semctl(sem, 0, IPC_RMID);
            say("PASS %ld", n);
            return 0;
        }
        say("tick %ld", n);
        tick_sleep();
    }
}
