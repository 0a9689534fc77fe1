/* sysvipc: a System V semaphore set and message queue shared by a process and its child.
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 * Prints "IDS <semid> <msqid>" before READY.
 *  - semaphore set (key ftok(workdir, 'A'), mode 0640, 3 semaphores): #0 holds 5 and is never
 *    touched again; #1 and #2 are a ping-pong (parent ups #1 and waits on #2, the child waits on #1
 *    and ups #2), so one of them is often inside semop when checkpointed.
 *  - message queue (IPC_PRIVATE, mode 0600): three messages of types 1, 2, 3 left in it until the
 *    final check; every tick the parent sends n as type 10, the child (waiting in msgrcv) answers
 *    n + 1000 as type 11.
 * "sysvipc --meddle SEMID MSQID" changes the objects as a stranger would (semaphore #0 to 9, one
 * more message of type 1): a restore must put them back as they were.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>
#include "target.h"

struct msg { long type; char text[64]; };

static int sem, msq;

static void op(int num, int delta)
{
    struct sembuf b = { (unsigned short)num, (short)delta, 0 };
    while (semop(sem, &b, 1) != 0)
        if (errno != EINTR)
            FAIL("semop(#%d, %d): %s", num, delta, strerror(errno));
}

static void send(long type, const char *text)
{
    struct msg m = { type, { 0 } };
    snprintf(m.text, sizeof m.text, "%s", text);
    if (msgsnd(msq, &m, strlen(m.text) + 1, 0) != 0)
        FAIL("msgsnd type %ld: %s", type, strerror(errno));
}

static void receive(long type, char *text)
{
    struct msg m;
    ssize_t n;
    while ((n = msgrcv(msq, &m, sizeof m.text, type, 0)) < 0)
        if (errno != EINTR)
            FAIL("msgrcv type %ld: %s", type, strerror(errno));
    memcpy(text, m.text, (size_t)n);
}

static void child(void)
{
    for (;;) {
        char text[64], answer[64];
        op(1, -1);
        op(2, 1);
        receive(10, text);
        if (strcmp(text, "end") == 0)
            _exit(0);
        snprintf(answer, sizeof answer, "%ld", atol(text) + 1000);
        send(11, answer);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--meddle") == 0) {
        sem = atoi(argv[2]);
        msq = atoi(argv[3]);
        if (semctl(sem, 0, SETVAL, 9) != 0)
            FAIL("meddle semctl: %s", strerror(errno));
        send(1, "stranger");
        return 0;
    }
    if (argc < 2)
        FAIL("usage: sysvipc WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    sem = semget(ftok(argv[1], 'A'), 3, IPC_CREAT | IPC_EXCL | 0640);
    msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (sem < 0 || msq < 0)
        FAIL("semget/msgget: %s", strerror(errno));
    unsigned short init[3] = { 5, 0, 0 };
    if (semctl(sem, 0, SETALL, init) != 0)
        FAIL("SETALL: %s", strerror(errno));
    send(1, "one");
    send(2, "two");
    send(3, "three");
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        child();
    say("IDS %d %d", sem, msq);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            op(1, 1);
            op(2, -1);
            send(10, "end");
            int status;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                FAIL("child ended with %d", status);
            if (semctl(sem, 0, GETVAL) != 5 || semctl(sem, 1, GETVAL) != 0 || semctl(sem, 2, GETVAL) != 0)
                FAIL("semaphores are %d %d %d, expected 5 0 0", semctl(sem, 0, GETVAL), semctl(sem, 1, GETVAL), semctl(sem, 2, GETVAL));
            const char *want[3] = { "one", "two", "three" };
            for (int i = 0; i < 3; i++) {
                struct msg m;
                ssize_t got = msgrcv(msq, &m, sizeof m.text, 0, IPC_NOWAIT);
                if (got < 0 || m.type != i + 1 || strcmp(m.text, want[i]) != 0)
                    FAIL("queued message %d: expected type %d '%s', got %zd bytes type %ld '%s'", i, i + 1, want[i],
                         got, got < 0 ? 0L : m.type, got < 0 ? "" : m.text);
            }
            struct msg extra;
            if (msgrcv(msq, &extra, sizeof extra.text, 0, IPC_NOWAIT) >= 0)
                FAIL("a message more than sent: type %ld '%s'", extra.type, extra.text);
            semctl(sem, 0, IPC_RMID);
            msgctl(msq, IPC_RMID, NULL);
            say("PASS %ld", n - 1);
            return 0;
        }
        char text[64], want[64];
        op(1, 1);
        op(2, -1);
        snprintf(text, sizeof text, "%ld", n);
        send(10, text);
        receive(11, text);
        snprintf(want, sizeof want, "%ld", n + 1000);
        if (strcmp(text, want) != 0)
            FAIL("tick %ld: the child answered '%s'", n, text);
        if (semctl(sem, 0, GETVAL) != 5)
            FAIL("semaphore #0 is %d, expected 5", semctl(sem, 0, GETVAL));
        say("tick %ld", n);
        tick_sleep();
    }
}
