/* deletedcwd: a process, and its child, whose working directory has been removed. argv[1] = workdir.
 * Protocol as in README.md. Setup: mkdir <wd>/gone, chdir into it, open it O_RDONLY|O_DIRECTORY
 * (dirfd) and O_PATH (pathfd), chdir out and back in with fchdir(dirfd), fork the child (PDEATHSIG;
 * its cwd is the same directory), then rmdir <wd>/gone by its absolute path.
 * Each tick (no inode number is compared with setup: a restore may recreate the directory):
 *  - getcwd() and the raw getcwd syscall fail with ENOENT; /proc/self/cwd reads "<wd>/gone (deleted)";
 *  - stat(".") is a directory with st_nlink 0, and fstat of dirfd and of pathfd give its dev/ino;
 *  - creating a file and a directory in it fails with ENOENT;
 *  - fchdir(dirfd) works and "." is still the same dev/ino;
 *  - the parent sends its stat(".") dev/ino to the child over a pipe; the child checks that its own
 *    "." is that directory (same dev/ino, st_nlink 0, getcwd ENOENT) and answers.
 * The child ends on the stop file (exit status checked).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "target.h"

struct msg { long n; dev_t dev; ino_t ino; };
static int req[2], ans[2], dirfd, pathfd;
static char wd[PATH_MAX], cwd_link[PATH_MAX + 32];
static pid_t child;

static struct stat dot(const char *who, long n)
{
    struct stat st;
    if (stat(".", &st) != 0)
        FAIL("%s, tick %ld: stat(\".\"): %s", who, n, strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_nlink != 0)
        FAIL("%s, tick %ld: \".\" has mode 0%o and %lu links, expected a directory with 0", who, n, st.st_mode,
             (unsigned long)st.st_nlink);
    char buf[PATH_MAX];
    errno = 0;
    if (getcwd(buf, sizeof buf) != NULL || errno != ENOENT)
        FAIL("%s, tick %ld: getcwd gives '%s' (%s), expected ENOENT", who, n, errno ? "" : buf, strerror(errno));
    long r = syscall(SYS_getcwd, buf, sizeof buf);
    if (r != -1 || errno != ENOENT)
        FAIL("%s, tick %ld: the getcwd syscall gives %ld (%s), expected ENOENT", who, n, r, strerror(errno));
    return st;
}

static void same_dir(long n, const char *what, struct stat a, struct stat b)
{
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        FAIL("tick %ld: %s is %lu:%lu, \".\" is %lu:%lu", n, what, (unsigned long)a.st_dev, (unsigned long)a.st_ino,
             (unsigned long)b.st_dev, (unsigned long)b.st_ino);
}

static void child_loop(void)
{
    for (;;) {
        struct msg m;
        if (read(req[0], &m, sizeof m) != sizeof m)
            FAIL("child: reading a request: %s", strerror(errno));
        if (m.n < 0)
            _exit(0);
        struct stat st = dot("child", m.n);
        if (st.st_dev != m.dev || st.st_ino != m.ino)
            FAIL("child, tick %ld: its \".\" is %lu:%lu, its parent's %lu:%lu", m.n, (unsigned long)st.st_dev,
                 (unsigned long)st.st_ino, (unsigned long)m.dev, (unsigned long)m.ino);
        if (write(ans[1], &m.n, sizeof m.n) != sizeof m.n)
            FAIL("child: answering: %s", strerror(errno));
    }
}

static void check(long n)
{
    struct stat st = dot("parent", n), f;
    if (fstat(dirfd, &f) != 0)
        FAIL("tick %ld: fstat(dirfd): %s", n, strerror(errno));
    same_dir(n, "dirfd", f, st);
    if (f.st_nlink != 0)
        FAIL("tick %ld: dirfd has %lu links", n, (unsigned long)f.st_nlink);
    if (fstat(pathfd, &f) != 0)
        FAIL("tick %ld: fstat(pathfd): %s", n, strerror(errno));
    same_dir(n, "pathfd", f, st);
    char link[PATH_MAX + 32];
    ssize_t len = readlink("/proc/self/cwd", link, sizeof link - 1);
    if (len < 0)
        FAIL("tick %ld: readlink /proc/self/cwd: %s", n, strerror(errno));
    link[len] = 0;
    if (strcmp(link, cwd_link) != 0)
        FAIL("tick %ld: /proc/self/cwd is '%s', expected '%s'", n, link, cwd_link);
    errno = 0;
    int x = openat(AT_FDCWD, "x", O_CREAT | O_WRONLY, 0600);
    if (x >= 0 || errno != ENOENT)
        FAIL("tick %ld: creating a file in the removed directory: %s, expected ENOENT", n, x >= 0 ? "created" : strerror(errno));
    if (mkdir("y", 0700) == 0 || errno != ENOENT)
        FAIL("tick %ld: mkdir in the removed directory: %s, expected ENOENT", n, strerror(errno));
    if (fchdir(dirfd) != 0)
        FAIL("tick %ld: fchdir(dirfd): %s", n, strerror(errno));
    same_dir(n, "\".\" after fchdir", dot("parent", n), st);

    struct msg m = { n, st.st_dev, st.st_ino };
    if (write(req[1], &m, sizeof m) != sizeof m)
        FAIL("tick %ld: asking the child: %s", n, strerror(errno));
    for (int waited = 0;; waited += 100) {
        struct pollfd p = { .fd = ans[0], .events = POLLIN };
        if (poll(&p, 1, 100) == 1)
            break;
        int status;
        if (waitpid(child, &status, WNOHANG) == child)
            FAIL("tick %ld: the child ended (status 0x%x)", n, status);
        if (waited > 5000)
            FAIL("tick %ld: no answer from the child in 5 s", n);
    }
    long got;
    if (read(ans[0], &got, sizeof got) != sizeof got || got != n)
        FAIL("tick %ld: the child answered %ld", n, got);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: deletedcwd WORKDIR");
    if (!realpath(argv[1], wd))
        FAIL("realpath %s: %s", argv[1], strerror(errno));
    char stop[PATH_MAX + 8], gone[PATH_MAX + 8];
    snprintf(stop, sizeof stop, "%s/stop", wd);
    snprintf(gone, sizeof gone, "%s/gone", wd);
    snprintf(cwd_link, sizeof cwd_link, "%s (deleted)", gone);
    if (mkdir(gone, 0755) != 0 || chdir(gone) != 0)
        FAIL("mkdir/chdir %s: %s", gone, strerror(errno));
    dirfd = open(".", O_RDONLY | O_DIRECTORY);
    pathfd = open(".", O_PATH | O_DIRECTORY);
    if (dirfd < 0 || pathfd < 0 || chdir(wd) != 0 || fchdir(dirfd) != 0)
        FAIL("open/chdir/fchdir: %s", strerror(errno));
    if (pipe(req) || pipe(ans))
        FAIL("pipe: %s", strerror(errno));
    pid_t parent = getpid();
    child = fork();
    if (child < 0)
        FAIL("fork: %s", strerror(errno));
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        child_loop();
    }
    if (rmdir(gone) != 0)
        FAIL("rmdir %s: %s", gone, strerror(errno));
    check(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            struct msg end = { -1, 0, 0 };
            int status;
            if (write(req[1], &end, sizeof end) != sizeof end || waitpid(child, &status, 0) != child ||
                !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                FAIL("the child ended with status 0x%x", status);
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
