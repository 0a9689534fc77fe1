/* unixowner: a unix socket bound by a process that is no longer root. argv[1] = workdir (every
 * directory above it must be searchable by nobody). Protocol as in README.md. Started as root, it
 * makes <wd> mode 0777, sets its umask to 027, drops its supplementary groups and sets its real,
 * effective and saved uid and gid to 65534 (nobody), and only then binds a SOCK_STREAM socket to
 * <wd>/owned.sock and listens on it. The socket file therefore belongs to 65534:65534 with mode 0750.
 * Each tick: stat(owned.sock) is a socket owned by 65534:65534 with mode 0750; getresuid/getresgid
 * are 65534 throughout and there are no supplementary groups; a client socket connects to the path,
 * the listener accepts it and a byte goes each way, then both are closed. A restore that binds the
 * socket as root (or leaves the credentials wrong) fails at the next tick.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "target.h"

#define NOBODY 65534
static struct sockaddr_un addr = { .sun_family = AF_UNIX };
static int lis;

static void check(long n)
{
    struct stat st;
    if (stat(addr.sun_path, &st) != 0)
        FAIL("tick %ld: stat %s: %s", n, addr.sun_path, strerror(errno));
    if (!S_ISSOCK(st.st_mode) || st.st_uid != NOBODY || st.st_gid != NOBODY || (st.st_mode & 07777) != 0750)
        FAIL("tick %ld: owned.sock is mode 0%o owner %u:%u, expected socket 0750 %d:%d", n, st.st_mode, st.st_uid,
             st.st_gid, NOBODY, NOBODY);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) || getresgid(&gr, &ge, &gs))
        FAIL("getresuid: %s", strerror(errno));
    if (r != NOBODY || e != NOBODY || s != NOBODY || gr != NOBODY || ge != NOBODY || gs != NOBODY ||
        getuid() != NOBODY || geteuid() != NOBODY)
        FAIL("tick %ld: uids %u %u %u gids %u %u %u, expected all %d", n, r, e, s, gr, ge, gs, NOBODY);
    gid_t groups[4];
    int ng = getgroups(4, groups);
    if (ng != 0)
        FAIL("tick %ld: %d supplementary groups, expected none", n, ng);

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof addr) != 0)
        FAIL("tick %ld: connect to owned.sock: %s", n, strerror(errno));
    int a = accept(lis, NULL, NULL);
    if (a < 0)
        FAIL("tick %ld: accept: %s", n, strerror(errno));
    char b = (char)n, got = 0;
    if (write(c, &b, 1) != 1 || read(a, &got, 1) != 1 || got != b)
        FAIL("tick %ld: client to server: sent %d, got %d", n, b, got);
    b = (char)~b;
    if (write(a, &b, 1) != 1 || read(c, &got, 1) != 1 || got != b)
        FAIL("tick %ld: server to client: sent %d, got %d", n, b, got);
    close(a);
    close(c);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: unixowner WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s/owned.sock", argv[1]) >= (int)sizeof addr.sun_path)
        FAIL("workdir path too long for a unix socket: %s", argv[1]);
    if (geteuid() != 0)
        FAIL("must be started as root");
    if (chmod(argv[1], 0777) != 0)
        FAIL("chmod %s: %s", argv[1], strerror(errno));
    unlink(addr.sun_path);
    umask(027);
    if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
        FAIL("dropping to nobody: %s", strerror(errno));
    lis = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lis < 0 || bind(lis, (struct sockaddr *)&addr, sizeof addr) || listen(lis, 4))
        FAIL("listen on %s as nobody: %s", addr.sun_path, strerror(errno));
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
