/* tree: a process tree with everything a tree has. argv[1] = workdir. Protocol as in README.md.
 *   main (process group leader) ─┬─ worker A (ticks; checks getppid; a child subreaper)
 *                                │    └─ grandchild (its own process group; ticks; checks getppid)
 *                                ├─ child Z: exits with code 7 at once, never reaped until the end (a zombie)
 *                                └─ child S: stops itself with SIGSTOP once ready (state T)
 * Each process writes "<role> <n>" lines through its own O_APPEND fd to <workdir>/<role>.txt and
 * checks its parent and process group every tick. main prints "tick <n>"; on the stop file it checks
 * that Z is still a zombie with status 7, that S is still stopped, then ends everyone and prints PASS.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "target.h"

static const char *workdir;
static volatile sig_atomic_t quit;
static pid_t grandchild; /* A's child: A ends it before ending itself, so it is never orphaned */

static void on_term(int sig) { (void)sig; quit = 1; }

static int open_log(const char *role)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.txt", workdir, role);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        FAIL("%s: open %s: %s", role, path, strerror(errno));
    return fd;
}

/* A worker: ticks until SIGTERM, checking that its parent and group stay what they were. */
static void worker(const char *role, pid_t parent, pid_t group)
{
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    int log = open_log(role);
    if (strcmp(role, "S") == 0)
        raise(SIGSTOP); /* main continues it at the end, after checking it is still stopped */
    for (long n = 1; !quit; n++) {
        if (getppid() != parent)
            FAIL("%s: parent is %d, was %d", role, getppid(), parent);
        if (getpgrp() != group)
            FAIL("%s: process group is %d, was %d", role, getpgrp(), group);
        int subreaper = -1;
        prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
        if (subreaper != (strcmp(role, "A") == 0))
            FAIL("%s: child subreaper flag is %d", role, subreaper);
        char line[64];
        int len = snprintf(line, sizeof line, "%s %ld\n", role, n);
        if (write(log, line, (size_t)len) != len)
            FAIL("%s: write: %s", role, strerror(errno));
        tick_sleep();
    }
    if (grandchild > 0) {
        int st;
        kill(grandchild, SIGTERM);
        if (waitpid(grandchild, &st, 0) != grandchild || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("%s: grandchild ended with status 0x%x", role, st);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: tree WORKDIR");
    workdir = argv[1];
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", workdir);
    setpgid(0, 0);
    pid_t me = getpid();

    pid_t a = fork();
    if (a == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        pid_t g = fork();
        if (g == 0) {
            setpgid(0, 0);
            worker("grandchild", getppid(), getpid());
        }
        grandchild = g;
        worker("A", me, me);
    }
    pid_t z = fork();
    if (z == 0)
        _exit(7);
    pid_t s = fork();
    if (s == 0)
        worker("S", me, me);
    int st;
    if (waitpid(s, &st, WUNTRACED) != s || !WIFSTOPPED(st))
        FAIL("S did not stop");
    usleep(20000);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            char path[64], state = '?';
            snprintf(path, sizeof path, "/proc/%d/stat", s);
            FILE *f = fopen(path, "r");
            if (!f || fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
                FAIL("cannot read %s", path);
            fclose(f);
            if (state != 'T')
                FAIL("S is in state %c, expected T (stopped)", state);
            if (waitpid(z, &st, WNOHANG) != z || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
                FAIL("Z: expected a zombie that exited with 7, got status 0x%x", st);
            kill(s, SIGTERM);
            kill(s, SIGCONT);
            kill(a, SIGTERM);
            if (waitpid(s, &st, 0) != s || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("S ended with status 0x%x", st);
            if (waitpid(a, &st, 0) != a || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("A ended with status 0x%x", st);
            say("PASS %ld", n - 1);
            return 0;
        }
        if (kill(a, 0) != 0)
            FAIL("worker A is gone");
        say("tick %ld", n);
        tick_sleep();
    }
}
