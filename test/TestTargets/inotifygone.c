/* inotifygone: inotify watches whose paths no longer lead to what they watch. argv[1] = workdir.
 * Protocol as in README.md. One inotify fd (IN_NONBLOCK) with four watches:
 *  F: <wd>/F, IN_MODIFY|IN_ATTRIB; the file is kept open (fd) and then unlinked (st_nlink 0).
 *  D: <wd>/D, IN_CREATE; the directory was then renamed to <wd>/D2.
 *  E: <wd>/E, IN_CREATE; then moved into another directory: <wd>/other/E.
 *  X: a directory really named "<wd>/x (deleted)", IN_CREATE.
 * Prints "WDS F=<wd> D=<wd> E=<wd> X=<wd>" at setup.
 * Each tick n: /proc/self/fdinfo of the inotify fd lists the same (wd, mask) pairs as at setup; a
 * write through F's fd, and files b<n>, c<n>, d<n> created in D2, other/E and "x (deleted)", must give
 * exactly, in order, IN_MODIFY on F's wd, then IN_CREATE with the file's name on D's, E's and X's wd
 * (the watch descriptors are the ones from setup); the files are then removed (IN_DELETE is not
 * watched). F's fd still has st_nlink 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include "target.h"

enum { F, D, E, X, NW };
static const char *names[NW] = { "F", "D", "E", "X" };
static int ino, wds[NW], ffd;
static unsigned masks0[NW];
static char dirs[NW][4200]; /* where D, E, X are now (F: unused) */

struct watch { int wd; unsigned mask; };

static int fdinfo(struct watch *w, int max)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ino);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t len = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (len < 0)
        FAIL("reading %s: %s", path, strerror(errno));
    close(f);
    buf[len] = 0;
    int n = 0;
    for (char *p = strstr(buf, "inotify wd:"); p; p = strstr(p + 1, "inotify wd:")) {
        if (n == max)
            FAIL("%s: more than %d watches", path, max);
        char *m = strstr(p, " mask:");
        if (sscanf(p, "inotify wd:%d", &w[n].wd) != 1 || !m || sscanf(m, " mask:%x", &w[n].mask) != 1)
            FAIL("%s: cannot parse '%.80s'", path, p);
        n++;
    }
    for (int i = 1; i < n; i++) /* sort by wd */
        for (int j = i; j > 0 && w[j - 1].wd > w[j].wd; j--) {
            struct watch t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    return n;
}

static void expect_event(long n, int which, unsigned mask, const char *name)
{
    static char buf[4096];
    static size_t len, off;
    if (off == len) {
        ssize_t r = read(ino, buf, sizeof buf);
        if (r <= 0)
            FAIL("tick %ld: no event for %s (expected mask 0x%x '%s'): %s", n, names[which], mask, name,
                 r < 0 ? strerror(errno) : "EOF");
        len = (size_t)r;
        off = 0;
    }
    struct inotify_event *ev = (struct inotify_event *)(buf + off);
    off += sizeof *ev + ev->len;
    const char *got = ev->len ? ev->name : "";
    if (ev->wd != wds[which] || ev->mask != mask || strcmp(got, name) != 0)
        FAIL("tick %ld: event wd %d mask 0x%x '%s', expected wd %d (%s) mask 0x%x '%s'", n, ev->wd, ev->mask, got,
             wds[which], names[which], mask, name);
}

static void no_more_events(long n)
{
    char b[4096];
    ssize_t r = read(ino, b, sizeof b);
    if (r != -1 || errno != EAGAIN) {
        struct inotify_event *ev = (struct inotify_event *)b;
        FAIL("tick %ld: an event more than expected (read %zd: wd %d mask 0x%x)", n, r, r > 0 ? ev->wd : 0,
             r > 0 ? ev->mask : 0);
    }
}

static void check(long n)
{
    struct watch w[8];
    int k = fdinfo(w, 8);
    if (k != NW)
        FAIL("tick %ld: the inotify fd has %d watches, expected %d", n, k, NW);
    for (int i = 0; i < NW; i++) /* wds were allocated 1..4 in order F, D, E, X */
        if (w[i].wd != wds[i] || w[i].mask != masks0[i])
            FAIL("tick %ld: watch %d is wd %d mask 0x%x, was wd %d mask 0x%x", n, i, w[i].wd, w[i].mask, wds[i], masks0[i]);
    struct stat st;
    if (fstat(ffd, &st) != 0 || st.st_nlink != 0)
        FAIL("tick %ld: F's fd: %lu links (%s), expected 0", n, (unsigned long)st.st_nlink, strerror(errno));
    char line[32], path[4300];
    int len = snprintf(line, sizeof line, "%ld\n", n);
    if (write(ffd, line, (size_t)len) != len)
        FAIL("tick %ld: write F: %s", n, strerror(errno));
    for (int i = D; i <= X; i++) {
        snprintf(path, sizeof path, "%s/%c%ld", dirs[i], "bcd"[i - D], n);
        int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (f < 0)
            FAIL("tick %ld: creating %s: %s", n, path, strerror(errno));
        close(f);
    }
    expect_event(n, F, IN_MODIFY, "");
    for (int i = D; i <= X; i++) {
        char name[32];
        snprintf(name, sizeof name, "%c%ld", "bcd"[i - D], n);
        expect_event(n, i, IN_CREATE, name);
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (unlink(path) != 0)
            FAIL("tick %ld: unlink %s: %s", n, path, strerror(errno));
    }
    no_more_events(n);
}

static int watch(const char *path, unsigned mask)
{
    int w = inotify_add_watch(ino, path, mask);
    if (w < 0)
        FAIL("inotify_add_watch %s: %s", path, strerror(errno));
    return w;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: inotifygone WORKDIR");
    const char *wd = argv[1];
    char stop[4200], p1[4200], p2[4200];
    snprintf(stop, sizeof stop, "%s/stop", wd);
    if ((ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        FAIL("inotify_init1: %s", strerror(errno));

    snprintf(p1, sizeof p1, "%s/F", wd);
    if ((ffd = open(p1, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0)
        FAIL("open %s: %s", p1, strerror(errno));
    wds[F] = watch(p1, IN_MODIFY | IN_ATTRIB);
    if (unlink(p1) != 0)
        FAIL("unlink %s: %s", p1, strerror(errno));

    snprintf(p1, sizeof p1, "%s/D", wd);
    snprintf(dirs[D], sizeof dirs[D], "%s/D2", wd);
    if (mkdir(p1, 0755) != 0)
        FAIL("mkdir %s: %s", p1, strerror(errno));
    wds[D] = watch(p1, IN_CREATE);
    if (rename(p1, dirs[D]) != 0)
        FAIL("rename %s: %s", p1, strerror(errno));

    snprintf(p1, sizeof p1, "%s/E", wd);
    snprintf(p2, sizeof p2, "%s/other", wd);
    snprintf(dirs[E], sizeof dirs[E], "%s/other/E", wd);
    if (mkdir(p1, 0755) != 0 || mkdir(p2, 0755) != 0)
        FAIL("mkdir %s: %s", p1, strerror(errno));
    wds[E] = watch(p1, IN_CREATE);
    if (rename(p1, dirs[E]) != 0)
        FAIL("rename %s: %s", p1, strerror(errno));

    snprintf(dirs[X], sizeof dirs[X], "%s/x (deleted)", wd);
    if (mkdir(dirs[X], 0755) != 0)
        FAIL("mkdir %s: %s", dirs[X], strerror(errno));
    wds[X] = watch(dirs[X], IN_CREATE);

    expect_event(0, F, IN_ATTRIB, ""); /* the unlink changed F's link count */
    no_more_events(0);
    struct watch w[8];
    if (fdinfo(w, 8) != NW)
        FAIL("setup: fdinfo does not list %d watches", NW);
    for (int i = 0; i < NW; i++) {
        if (w[i].wd != wds[i])
            FAIL("setup: watch descriptors not allocated in order");
        masks0[i] = w[i].mask;
    }
    say("WDS F=%d D=%d E=%d X=%d", wds[F], wds[D], wds[E], wds[X]);
    check(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
