/* sessions: a tree with several sessions, process groups and zombies. argv[1] = workdir. Protocol as
 * in README.md (main prints the ticks). main is a child subreaper and its own process group leader:
 *   main ─┬─ S1: setsid() (session and group S1)
 *         │    ├─ G1: setpgid(0,0) (group G1 in session S1)
 *         │    ├─ G2: stays in group S1
 *         │    └─ ZG: exits with 3 at once, never reaped by S1 (a zombie grandchild)
 *         ├─ O: setpgid(0,0), forks O2 (in group O), exits; main reaps O, so O2 is re-parented to
 *         │    main (the subreaper). O2's group id is O's pid, and no process has that pid any more.
 *         │    (The group is not orphaned in the POSIX sense: its member's parent, main, is in
 *         │    another group of the same session.)
 *         ├─ O2 (see O)
 *         ├─ D: setsid(), forks D2 (in session and group D), exits: the classic daemon's double fork
 *         │    under a subreaper. main reaps D; D2, re-parented to main, is in a session whose
 *         │    leader is gone.
 *         ├─ D2 (see D)
 *         ├─ Z1: setpgid(0,0), then raise(SIGKILL): a zombie killed by signal 9, in its own group
 *         └─ Z2: exits with 9 at once, in main's group: a zombie
 * Only main and Z2 are in main's process group; S1, G1, G2, ZG are in session S1; O2 in group O; Z1 in
 * group Z1. Prints "PIDS ..." at setup.
 * Every live process checks each tick that getppid(), getpgrp(), getsid(0) and PR_GET_PDEATHSIG
 * (SIGKILL) are what they were at setup, and FAILs (exit 1) otherwise. O2 sets PDEATHSIG only once it
 * has been re-parented to main (set before, it would have fired when O exited). S1 also checks ZG
 * (state Z in /proc/<pid>/stat, getpgid, getsid) and that G1 and G2 live. main checks that S1 and O2
 * live (waitpid WNOHANG), Z1 and Z2 are in state Z with their groups and sessions, group O exists
 * (kill(-O, 0)) while pid O does not (ESRCH), and that it is still a subreaper.
 * On the stop file main checks that Z1 was killed by 9 and Z2 exited with 9, then sends SIGTERM to S1
 * and O2 and expects 0 from each; S1 first reaps ZG (3), ends G1 and G2 with SIGTERM and expects 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "target.h"

struct hello { char role[4]; pid_t pid; };
static volatile sig_atomic_t quit;
static int rp[2];
static pid_t M, msid, S1, G1, G2, ZG, O, O2, D, D2, Z1, Z2;

static void on_term(int sig) { (void)sig; quit = 1; }

static void tell(const char *role, pid_t pid)
{
    struct hello h = { { 0 }, pid };
    snprintf(h.role, sizeof h.role, "%s", role);
    if (write(rp[1], &h, sizeof h) != sizeof h)
        FAIL("%s: telling main: %s", role, strerror(errno));
}

static char state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (f >= 0)
        close(f);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

static void check_zombie(const char *who, const char *name, pid_t pid, pid_t pgid, pid_t sid, long n)
{
    char st = state_of(pid);
    if (st != 'Z')
        FAIL("%s, tick %ld: %s (%d) is in state %c, expected Z", who, n, name, pid, st);
    if (getpgid(pid) != pgid || getsid(pid) != sid)
        FAIL("%s, tick %ld: %s (%d) is in group %d session %d, expected %d %d", who, n, name, pid, getpgid(pid),
             getsid(pid), pgid, sid);
}

static void self_check(const char *role, pid_t ppid, pid_t pgrp, pid_t sid, long n)
{
    int pdeath = -1;
    prctl(PR_GET_PDEATHSIG, &pdeath);
    if (getppid() != ppid || getpgrp() != pgrp || getsid(0) != sid || (role[0] != 'm' && pdeath != SIGKILL))
        FAIL("%s, tick %ld: parent %d group %d session %d pdeathsig %d, expected %d %d %d %d", role, n, getppid(),
             getpgrp(), getsid(0), pdeath, ppid, pgrp, sid, SIGKILL);
}

static void ended(const char *who, const char *name, pid_t pid, int code, int sig)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    if (r != pid || (sig ? !WIFSIGNALED(st) || WTERMSIG(st) != sig : !WIFEXITED(st) || WEXITSTATUS(st) != code))
        FAIL("%s: %s (%d) ended with status 0x%x (waitpid %d), expected %s %d", who, name, pid, st, r,
             sig ? "signal" : "exit", sig ? sig : code);
}

static void alive(const char *who, const char *name, pid_t pid, long n)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r != 0)
        FAIL("%s, tick %ld: %s (%d) has ended: waitpid %d status 0x%x (%s)", who, n, name, pid, r, st,
             r < 0 ? strerror(errno) : "");
}

/* a live process other than main: ticks until SIGTERM */
static void live(const char *role, pid_t ppid, pid_t pgrp, pid_t sid)
{
    for (long n = 1; !quit; n++) {
        self_check(role, ppid, pgrp, sid, n);
        if (strcmp(role, "S1") == 0) {
            check_zombie("S1", "ZG", ZG, S1, S1, n);
            alive("S1", "G1", G1, n);
            alive("S1", "G2", G2, n);
        }
        tick_sleep();
    }
    self_check(role, ppid, pgrp, sid, -1);
    if (strcmp(role, "S1") == 0) {
        ended("S1", "ZG", ZG, 3, 0);
        kill(G1, SIGTERM);
        kill(G2, SIGTERM);
        ended("S1", "G1", G1, 0, 0);
        ended("S1", "G2", G2, 0, 0);
    }
    _exit(0);
}

static pid_t child(const char *role, int pdeath)
{
    pid_t parent = getpid(), c = fork();
    if (c < 0)
        FAIL("%s: fork: %s", role, strerror(errno));
    if (c == 0 && pdeath) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
    }
    return c;
}

static void s1(void)
{
    if (setsid() < 0)
        FAIL("S1: setsid: %s", strerror(errno));
    S1 = getpid();
    if ((G1 = child("G1", 1)) == 0) {
        setpgid(0, 0);
        G1 = getpid();
        tell("G1", G1);
        live("G1", S1, G1, S1);
    }
    setpgid(G1, G1);
    if ((G2 = child("G2", 1)) == 0) {
        tell("G2", getpid());
        live("G2", S1, S1, S1);
    }
    if ((ZG = child("ZG", 1)) == 0)
        _exit(3);
    siginfo_t si;
    if (waitid(P_PID, (id_t)ZG, &si, WEXITED | WNOWAIT) != 0)
        FAIL("S1: waitid ZG: %s", strerror(errno));
    tell("ZG", ZG);
    tell("S1", S1);
    live("S1", M, S1, S1);
}

static void o(void)
{
    setpgid(0, 0);
    O = getpid();
    if ((O2 = child("O2", 0)) == 0) {
        /* wait to be re-parented to main (O exits at once), and only then ask for PDEATHSIG */
        for (int i = 0; getppid() != M; i++) {
            if (i > 5000)
                FAIL("O2: not re-parented to main (%d) but to %d", M, getppid());
            usleep(1000);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != M)
            _exit(1);
        tell("O2", getpid());
        live("O2", M, O, msid);
    }
    _exit(0);
}

static void d(void)
{
    if (setsid() < 0)
        FAIL("D: setsid: %s", strerror(errno));
    D = getpid();
    if ((D2 = child("D2", 0)) == 0) {
        for (int i = 0; getppid() != M; i++) {
            if (i > 5000)
                FAIL("D2: not re-parented to main (%d) but to %d", M, getppid());
            usleep(1000);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != M)
            _exit(1);
        tell("D2", getpid());
        live("D2", M, D, D);
    }
    _exit(0);
}

static void check_main(long n)
{
    self_check("main", getppid(), M, msid, n);
    int sub = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &sub);
    if (sub != 1)
        FAIL("main, tick %ld: child subreaper flag is %d", n, sub);
    alive("main", "S1", S1, n);
    alive("main", "O2", O2, n);
    alive("main", "D2", D2, n);
    if (getsid(D2) != D || getpgid(D2) != D)
        FAIL("main, tick %ld: D2 is in session %d group %d, expected %d %d", n, getsid(D2), getpgid(D2), D, D);
    check_zombie("main", "Z1", Z1, Z1, msid, n);
    check_zombie("main", "Z2", Z2, M, msid, n);
    if (getpgid(O2) != O || getsid(S1) != S1 || getpgid(S1) != S1)
        FAIL("main, tick %ld: O2's group is %d (expected %d), S1's session %d group %d (expected %d)", n, getpgid(O2), O,
             getsid(S1), getpgid(S1), S1);
    if (kill(-O, 0) != 0)
        FAIL("main, tick %ld: process group %d (O's) is gone: %s", n, O, strerror(errno));
    errno = 0;
    if (kill(O, 0) == 0 || errno != ESRCH)
        FAIL("main, tick %ld: pid %d (O, reaped) exists again (%s)", n, O, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: sessions WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    setpgid(0, 0);
    M = getpid();
    msid = getsid(0);
    if (getpgrp() != M)
        FAIL("main is not its own process group leader");
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0 || pipe(rp) != 0)
        FAIL("setup: %s", strerror(errno));

    if ((S1 = child("S1", 1)) == 0)
        s1();
    if ((O = child("O", 1)) == 0)
        o();
    if ((D = child("D", 1)) == 0)
        d();
    if ((Z1 = child("Z1", 1)) == 0) {
        setpgid(0, 0);
        raise(SIGKILL);
        _exit(1);
    }
    setpgid(Z1, Z1);
    if ((Z2 = child("Z2", 1)) == 0)
        _exit(9);
    siginfo_t si;
    if (waitid(P_PID, (id_t)Z1, &si, WEXITED | WNOWAIT) != 0 || waitid(P_PID, (id_t)Z2, &si, WEXITED | WNOWAIT) != 0)
        FAIL("waitid Z1/Z2: %s", strerror(errno));
    int st;
    if (waitpid(O, &st, 0) != O || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("O ended with status 0x%x", st);
    if (waitpid(D, &st, 0) != D || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("D ended with status 0x%x", st);
    for (int got = 0; got < 6; got++) {
        struct pollfd p = { .fd = rp[0], .events = POLLIN };
        struct hello h;
        if (poll(&p, 1, 5000) != 1 || read(rp[0], &h, sizeof h) != sizeof h)
            FAIL("setup: only %d of 6 processes said they are ready", got);
        if (strcmp(h.role, "G1") == 0)
            G1 = h.pid;
        else if (strcmp(h.role, "G2") == 0)
            G2 = h.pid;
        else if (strcmp(h.role, "ZG") == 0)
            ZG = h.pid;
        else if (strcmp(h.role, "O2") == 0)
            O2 = h.pid;
        else if (strcmp(h.role, "D2") == 0)
            D2 = h.pid;
        else if (strcmp(h.role, "S1") != 0)
            FAIL("setup: unknown role %s", h.role);
    }
    say("PIDS main=%d S1=%d G1=%d G2=%d ZG=%d O=%d(gone) O2=%d D=%d(gone) D2=%d Z1=%d Z2=%d session=%d", M, S1, G1, G2,
        ZG, O, O2, D, D2, Z1, Z2, msid);
    check_main(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check_main(n);
            ended("main", "Z1", Z1, 0, SIGKILL);
            ended("main", "Z2", Z2, 9, 0);
            kill(S1, SIGTERM);
            kill(O2, SIGTERM);
            kill(D2, SIGTERM);
            ended("main", "S1", S1, 0, 0);
            ended("main", "O2", O2, 0, 0);
            ended("main", "D2", D2, 0, 0);
            say("PASS %ld", n - 1);
            return 0;
        }
        check_main(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
