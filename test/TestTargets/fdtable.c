/* fdtable: two processes sharing ONE fd table but not their memory: the child is made with
 * clone(CLONE_FILES | SIGCHLD) (a fork whose fd table stays shared). argv[1] = workdir. Protocol as
 * in README.md. They talk over a request pipe and an answer pipe opened before the clone.
 * Each tick n the parent opens a new file <wd>/p<n>, writes "parent <n>\n" into it, unlinks it, and
 * sends the child only its fd number (and the number of the one it opened at tick n-1). The child
 * preads the file through that number, opens its own file <wd>/c<n> ("child <n>\n", unlinked),
 * closes the parent's fd of tick n-1 and answers with its new fd number. The parent checks that its
 * fd of tick n-1 is closed (F_GETFD gives EBADF), reads the child's file through the child's fd
 * number and closes it. Both check kcmp(KCMP_FILES) == 0 (one table); the child checks getppid.
 * After a restore that gives them two tables this fails within one tick.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "target.h"

struct msg { long n; int fd, prev; };
static int req[2], ans[2];
static const char *wd;
static pid_t parent, child;

static int same_table(pid_t a, pid_t b) { return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0; }

static int make_file(const char *who, long n)
{
    char path[4200], text[64];
    snprintf(path, sizeof path, "%s/%c%ld", wd, who[0], n);
    int len = snprintf(text, sizeof text, "%s %ld\n", who, n);
    int f = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (f < 0 || write(f, text, (size_t)len) != len || unlink(path) != 0)
        FAIL("%s, tick %ld: making %s: %s", who, n, path, strerror(errno));
    return f;
}

static void expect_file(const char *me, int f, const char *who, long n)
{
    char want[64], got[64];
    int len = snprintf(want, sizeof want, "%s %ld\n", who, n);
    ssize_t r = pread(f, got, sizeof got, 0);
    if (r != len || memcmp(got, want, (size_t)len) != 0)
        FAIL("%s, tick %ld: fd %d should hold '%s %ld', got %zd bytes '%.*s' (%s)", me, n, f, who, n, r,
             r > 0 ? (int)r - 1 : 0, got, r < 0 ? strerror(errno) : "");
}

static void child_loop(void)
{
    for (;;) {
        struct msg m;
        ssize_t r = read(req[0], &m, sizeof m);
        if (r != sizeof m)
            FAIL("child: reading a request: %zd (%s)", r, strerror(errno));
        if (getppid() != parent)
            FAIL("child: parent is %d, was %d", getppid(), parent);
        if (!same_table(getpid(), parent))
            FAIL("child, tick %ld: kcmp says its fd table is not its parent's", m.n);
        if (m.n < 0)
            _exit(0);
        expect_file("child", m.fd, "parent", m.n);
        struct msg a = { m.n, make_file("child", m.n), -1 };
        if (m.prev >= 0 && close(m.prev) != 0)
            FAIL("child, tick %ld: closing the parent's fd %d: %s", m.n, m.prev, strerror(errno));
        if (write(ans[1], &a, sizeof a) != sizeof a)
            FAIL("child: answering: %s", strerror(errno));
    }
}

static void ask(struct msg m, struct msg *a)
{
    if (write(req[1], &m, sizeof m) != sizeof m)
        FAIL("parent: sending a request: %s", strerror(errno));
    if (!a)
        return;
    for (int waited = 0;; waited += 100) {
        struct pollfd p = { .fd = ans[0], .events = POLLIN };
        if (poll(&p, 1, 100) == 1)
            break;
        int st;
        if (waitpid(child, &st, WNOHANG) == child)
            FAIL("tick %ld: the child ended (status 0x%x) instead of answering", m.n, st);
        if (waited > 5000)
            FAIL("tick %ld: no answer from the child in 5 s", m.n);
    }
    if (read(ans[0], a, sizeof *a) != sizeof *a || a->n != m.n)
        FAIL("tick %ld: bad answer from the child (tick %ld): %s", m.n, a->n, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: fdtable WORKDIR");
    wd = argv[1];
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", wd);
    if (pipe(req) || pipe(ans))
        FAIL("pipe: %s", strerror(errno));
    parent = getpid();
    child = (pid_t)syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
    if (child < 0)
        FAIL("clone: %s", strerror(errno));
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        child_loop();
    }
    if (!same_table(parent, child))
        FAIL("setup: kcmp says the child's fd table is not the parent's");
    say("CHILD %d", child);

    int prev = -1;
    say("READY");
    for (long n = 1;; n++) {
        if (!same_table(parent, child))
            FAIL("tick %ld: kcmp says the child's fd table is not the parent's", n);
        if (access(stop, F_OK) == 0) {
            if (prev >= 0)
                expect_file("parent", prev, "parent", n - 1);
            struct msg end = { -1, -1, -1 };
            ask(end, NULL);
            int st;
            if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("the child ended with status 0x%x", st);
            say("PASS %ld", n - 1);
            return 0;
        }
        int fd = make_file("parent", n);
        struct msg m = { n, fd, prev }, a;
        ask(m, &a);
        errno = 0;
        if (prev >= 0 && (fcntl(prev, F_GETFD) != -1 || errno != EBADF))
            FAIL("tick %ld: fd %d, closed by the child, is still open here (%s)", n, prev, strerror(errno));
        expect_file("parent", a.fd, "child", n);
        close(a.fd);
        prev = fd;
        say("tick %ld fd=%d child_fd=%d", n, fd, a.fd);
        tick_sleep();
    }
}
