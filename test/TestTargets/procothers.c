/* procothers.c - checkpoint/restore target: fds open on /proc files of other processes and threads of
 * its own tree, which exist again only once the restore has made them:
 *   main ─┬─ A: holds an fd on /proc/<B>/stat (its younger sibling: made after A by the restore)
 *         ├─ B: ticks
 *         └─ Z: exits with 7 at once, never reaped until the end (a zombie)
 *   main holds fds on /proc/<A>/status (at offset 7, with a dup that shares that offset),
 *   /proc/<Z>/stat (not close-on-exec) and /proc/<main>/task/<T>/stat of its second thread T
 *   (blocked in pause()).
 * usage: procothers <workdir>
 * Protocol: READY, then every ~20 ms "tick <n>". Each tick main checks every fd of its own (the path it
 * names, its offset and flags, and that a pread at 0 reads the right process's pid, and state Z for
 * the zombie) and that A and B live; A checks its fd on B's stat the same way (exit 1 on a mismatch).
 * If <workdir>/stop exists: main ends A, then B, with SIGTERM (each exits 0), reaps Z (7), prints
 * "PASS <n>" and exits 0. Any mismatch: "FAIL ...", exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "target.h"

static char stop_path[4096];
static volatile sig_atomic_t quit;
static volatile pid_t thread_tid;

static void on_term(int sig) { (void)sig; quit = 1; }

/* fd names path, sits at offset at, has close-on-exec as cloexec, and reads (pread at 0) a stat or
 * status file of process id (state Z when zombie is set; stat files only). */
static void check_fd(const char *who, int fd, const char *path, off_t at, int cloexec, pid_t id, int zombie)
{
    char link[64], got[128] = { 0 }, text[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (readlink(link, got, sizeof got - 1) < 0) FAIL("%s: readlink %s: %s", who, link, strerror(errno));
    if (strcmp(got, path) != 0) FAIL("%s: fd %d names %s, expected %s", who, fd, got, path);
    off_t now = lseek(fd, 0, SEEK_CUR);
    if (now != at) FAIL("%s: fd %d (%s) at offset %ld, expected %ld", who, fd, path, (long)now, (long)at);
    int flags = fcntl(fd, F_GETFD);
    if (((flags & FD_CLOEXEC) != 0) != cloexec) FAIL("%s: fd %d (%s) close-on-exec %d, expected %d", who, fd, path, flags & FD_CLOEXEC, cloexec);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) FAIL("%s: pread of %s returned %zd: %s", who, path, n, n < 0 ? strerror(errno) : "nothing");
    text[n] = 0;
    long pid;
    if (strncmp(text, "Name:", 5) == 0) {
        char *line = strstr(text, "\nPid:\t");
        if (!line || sscanf(line, "\nPid:\t%ld", &pid) != 1) FAIL("%s: %s has no Pid line", who, path);
    } else {
        char state = 0;
        char *end = strrchr(text, ')');
        if (sscanf(text, "%ld", &pid) != 1 || !end || sscanf(end, ") %c", &state) != 1) FAIL("%s: %s reads '%.40s'", who, path, text);
        if (zombie && state != 'Z') FAIL("%s: %s says state %c, expected Z", who, path, state);
        if (!zombie && state == 'Z') FAIL("%s: %s says state Z", who, path);
    }
    if (pid != id) FAIL("%s: %s is process %ld's, expected %d's", who, path, pid, (int)id);
}

static int open_at(const char *path, off_t at, int cloexec)
{
    int fd = open(path, O_RDONLY | (cloexec ? O_CLOEXEC : 0));
    if (fd < 0) FAIL("open %s: %s", path, strerror(errno));
    if (at && lseek(fd, at, SEEK_SET) != at) FAIL("lseek %s: %s", path, strerror(errno));
    return fd;
}

static void *blocked(void *arg)
{
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static void child_loop(const char *role, int fd, const char *path, pid_t id)
{
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    while (!quit) {
        if (fd >= 0)
            check_fd(role, fd, path, 0, 1, id, 0);
        tick_sleep();
    }
    if (fd >= 0)
        check_fd(role, fd, path, 0, 1, id, 0);
    _exit(0);
}

static void ended(pid_t pid, const char *name, int code)
{
    int st;
    pid_t r = waitpid(pid, &st, 0);
    if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != code)
        FAIL("%s (%d) ended with status 0x%x (waitpid %d), expected exit %d", name, (int)pid, st, (int)r, code);
}

int main(int argc, char **argv)
{
    if (argc < 2) FAIL("usage: procothers <workdir>");
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    pid_t self = getpid();
    int ab[2], ba[2]; /* A learns B's pid through ab, and says it has its fd through ba */
    if (pipe2(ab, O_CLOEXEC) < 0 || pipe2(ba, O_CLOEXEC) < 0) FAIL("pipe: %s", strerror(errno));
    pid_t a = fork();
    if (a < 0) FAIL("fork: %s", strerror(errno));
    if (a == 0) {
        pid_t b;
        if (read(ab[0], &b, sizeof b) != sizeof b) _exit(2);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)b);
        int fd = open_at(path, 0, 1);
        if (write(ba[1], "k", 1) != 1) _exit(2);
        child_loop("A", fd, path, b);
    }
    pid_t b = fork();
    if (b < 0) FAIL("fork: %s", strerror(errno));
    if (b == 0)
        child_loop("B", -1, "", 0);
    pid_t z = fork();
    if (z < 0) FAIL("fork: %s", strerror(errno));
    if (z == 0)
        _exit(7);
    char k;
    if (write(ab[1], &b, sizeof b) != sizeof b || read(ba[0], &k, 1) != 1) FAIL("A did not start");
    pthread_t t;
    if (pthread_create(&t, NULL, blocked, NULL) != 0) FAIL("pthread_create");
    while (!thread_tid)
        usleep(1000);
    for (siginfo_t si = { 0 }; si.si_pid != z; usleep(1000)) /* until Z is a zombie */
        if (waitid(P_PID, z, &si, WEXITED | WNOWAIT | WNOHANG) < 0) FAIL("waitid Z: %s", strerror(errno));

    char a_status[64], z_stat[64], t_stat[96];
    snprintf(a_status, sizeof a_status, "/proc/%d/status", (int)a);
    snprintf(z_stat, sizeof z_stat, "/proc/%d/stat", (int)z);
    snprintf(t_stat, sizeof t_stat, "/proc/%d/task/%d/stat", (int)self, (int)thread_tid);
    int as = open_at(a_status, 7, 1);
    int as2 = dup(as); /* shares its offset */
    int zs = open_at(z_stat, 0, 0);
    int ts = open_at(t_stat, 0, 1);
    if (as2 < 0) FAIL("dup: %s", strerror(errno));
    say("READY");
    for (long n = 1;; n++) {
        struct stat st;
        int stopping = stat(stop_path, &st) == 0;
        check_fd("main", as, a_status, 7, 1, a, 0);
        check_fd("main", as2, a_status, 7, 0, a, 0);
        check_fd("main", zs, z_stat, 0, 0, z, 1);
        check_fd("main", ts, t_stat, 0, 1, thread_tid, 0);
        /* the dup shares the offset: moved through one, seen through the other */
        if (lseek(as2, 9, SEEK_SET) != 9 || lseek(as, 0, SEEK_CUR) != 9 || lseek(as, 7, SEEK_SET) != 7)
            FAIL("fds %d and %d on %s no longer share their offset", as, as2, a_status);
        int wst;
        pid_t r;
        if ((r = waitpid(a, &wst, WNOHANG)) != 0) FAIL("A (%d) has ended: waitpid %d status 0x%x", (int)a, (int)r, wst);
        if ((r = waitpid(b, &wst, WNOHANG)) != 0) FAIL("B (%d) has ended: waitpid %d status 0x%x", (int)b, (int)r, wst);
        if (stopping) {
            kill(a, SIGTERM); /* A first: it reads B's stat until it ends */
            ended(a, "A", 0);
            kill(b, SIGTERM);
            ended(b, "B", 0);
            ended(z, "Z", 7);
            say("PASS %ld", n - 1);
            return 0;
        }
        say("tick %ld", n);
        tick_sleep();
    }
}
