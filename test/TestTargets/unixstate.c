/* unixstate: unix sockets in states other than "connected and idle". argv[1] = workdir. Protocol as
 * in README.md. All sockets are this process's own.
 *  - stream socketpair X/Y: "x2y" queued X->Y and "y2x" Y->X, then X shutdown(SHUT_WR) and Y
 *    shutdown(SHUT_RD). On a unix socketpair both shut the same direction (X->Y): Y->X stays open.
 *    Each tick: send on X fails EPIPE, MSG_PEEK on each end sees its 3 bytes, poll() of each end
 *    equals setup (X POLLIN|POLLOUT, Y POLLIN|POLLOUT|POLLRDHUP). End: Y reads "x2y" then 0 (EOF);
 *    X reads "y2x" then EAGAIN (not EOF), and "more" sent Y->X arrives.
 *  - survivors of a closed peer that wrote "bye" and closed: stream SS, seqpacket QS, datagram DS.
 *    Each tick: MSG_PEEK sees "bye", poll() equals setup, send on SS/QS fails EPIPE (DS is never sent
 *    to before the end: the first send on it fails ECONNREFUSED, disconnects it and drops what is
 *    queued). End: "bye" then 0 (SS, QS) or EAGAIN (DS); then DS send gives ECONNREFUSED, a second
 *    send ENOTCONN, and getpeername ENOTCONN (before, getpeername succeeds: the dead peer is still
 *    its peer).
 *  - listening stream socket L (<wd>/listen.sock, backlog 8, O_NONBLOCK) with 2 connections never
 *    accepted, C1 and C2, kept by the process (nothing sent before the accept: what a client sent
 *    waits where only an accept can read it, and Amber refuses that). Each tick: SO_ACCEPTCONN is 1
 *    and poll() sees POLLIN on L. End: non-blocking connects succeed exactly 7 more times (the queue
 *    takes backlog + 1 = 9), then accept gives C1's and C2's connections in that order (EAGAIN on
 *    each), each talks both ways with its client, then the 7 extra ones, then EAGAIN.
 *  - listening seqpacket socket LQ (<wd>/seq.sock, backlog 4) with one connection (CQ) waiting;
 *    checked like L; at the end accepted, and both ways checked.
 *  - getsockname/getpeername of every socket above equal (length, bytes or errno) what they were at
 *    setup, every tick (clients' peer is the listener's path, pairs are unnamed).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "target.h"

enum { X, Y, SS, QS, DS, L, C1, C2, LQ, CQ, NS };
static const char *names[NS] = { "X", "Y", "SS", "QS", "DS", "L", "C1", "C2", "LQ", "CQ" };
static int fd[NS];
static struct name { int err; socklen_t len; struct sockaddr_un a; } self0[NS], peer0[NS];
static short poll0[NS];
static char lpath[200], qpath[200];

static struct name getname(int i, int peer)
{
    struct name n = { 0, sizeof n.a, { 0 } };
    if ((peer ? getpeername : getsockname)(fd[i], (struct sockaddr *)&n.a, &n.len) != 0)
        n.err = errno, n.len = 0;
    return n;
}

static int same(struct name a, struct name b)
{
    return a.err == b.err && a.len == b.len && memcmp(&a.a, &b.a, a.len) == 0;
}

static short poll1(int i)
{
    struct pollfd p = { .fd = fd[i], .events = POLLIN | POLLOUT | POLLRDHUP };
    if (poll(&p, 1, 0) < 0)
        FAIL("poll %s: %s", names[i], strerror(errno));
    return p.revents;
}

static void expect_recv(const char *what, int s, int flags, const char *want, int want_errno)
{
    char b[64];
    errno = 0;
    ssize_t n = recv(s, b, sizeof b, flags | MSG_DONTWAIT);
    if (want_errno ? (n != -1 || errno != want_errno) : (n != (ssize_t)strlen(want) || memcmp(b, want, n) != 0))
        FAIL("%s: expected '%s' (%s), got %zd bytes '%.*s' (%s)", what, want ? want : "", strerror(want_errno), n,
             n > 0 ? (int)n : 0, b, n < 0 ? strerror(errno) : "no error");
}

static void expect_send_err(const char *what, int s, int want)
{
    errno = 0;
    if (send(s, "q", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != want)
        FAIL("%s: send expected %s, got %s", what, strerror(want), strerror(errno));
}

static void put(const char *what, int s, const char *m)
{
    if (send(s, m, strlen(m), MSG_NOSIGNAL) != (ssize_t)strlen(m))
        FAIL("%s: send '%s': %s", what, m, strerror(errno));
}

static int sockpair(int type, int *a, int *b)
{
    int s[2];
    if (socketpair(AF_UNIX, type, 0, s) != 0)
        FAIL("socketpair: %s", strerror(errno));
    *a = s[0];
    *b = s[1];
    return 0;
}

static int listener(int type, const char *path, int backlog)
{
    int s = socket(AF_UNIX, type, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, backlog))
        FAIL("listen on %s: %s", path, strerror(errno));
    return s;
}

static int client(int type, const char *path, int nonblock)
{
    int s = socket(AF_UNIX, type | (nonblock ? SOCK_NONBLOCK : 0), 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (s < 0)
        FAIL("socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        if (nonblock && errno == EAGAIN) {
            close(s);
            return -1;
        }
        FAIL("connect to %s: %s", path, strerror(errno));
    }
    return s;
}

static void check_listener(long n, int i)
{
    int on = -1;
    socklen_t len = sizeof on;
    if (getsockopt(fd[i], SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 || on != 1)
        FAIL("tick %ld: SO_ACCEPTCONN of %s is %d (%s)", n, names[i], on, strerror(errno));
    struct pollfd p = { .fd = fd[i], .events = POLLIN };
    if (poll(&p, 1, 0) != 1 || p.revents != POLLIN)
        FAIL("tick %ld: poll of listener %s: revents 0x%x, expected POLLIN (connections waiting)", n, names[i], p.revents);
}

static void check(long n)
{
    for (int i = 0; i < NS; i++) {
        if (!same(getname(i, 0), self0[i]) || !same(getname(i, 1), peer0[i]))
            FAIL("tick %ld: getsockname/getpeername of %s: '%s'/'%s' err %d/%d, were '%s'/'%s' err %d/%d", n,
                 names[i], getname(i, 0).a.sun_path, getname(i, 1).a.sun_path, getname(i, 0).err,
                 getname(i, 1).err, self0[i].a.sun_path, peer0[i].a.sun_path, self0[i].err, peer0[i].err);
        if (i != L && i != LQ && poll1(i) != poll0[i])
            FAIL("tick %ld: poll of %s gives 0x%x, was 0x%x", n, names[i], poll1(i), poll0[i]);
    }
    expect_send_err("X (SHUT_WR)", fd[X], EPIPE);
    expect_recv("peek Y", fd[Y], MSG_PEEK, "x2y", 0);
    expect_recv("peek X", fd[X], MSG_PEEK, "y2x", 0);
    expect_recv("peek SS", fd[SS], MSG_PEEK, "bye", 0);
    expect_recv("peek QS", fd[QS], MSG_PEEK, "bye", 0);
    expect_recv("peek DS", fd[DS], MSG_PEEK, "bye", 0);
    expect_send_err("SS (peer closed)", fd[SS], EPIPE);
    expect_send_err("QS (peer closed)", fd[QS], EPIPE);
    int fl = fcntl(fd[L], F_GETFL);
    if (!(fl & O_NONBLOCK))
        FAIL("tick %ld: listener L lost O_NONBLOCK (0x%x)", n, fl);
    check_listener(n, L);
    check_listener(n, LQ);
}

/* accept one connection from a listener that must have one waiting */
static int take(int l, const char *what)
{
    struct pollfd p = { .fd = l, .events = POLLIN };
    if (poll(&p, 1, 0) != 1)
        FAIL("%s: no connection waiting", what);
    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    if (c < 0)
        FAIL("%s: accept: %s", what, strerror(errno));
    return c;
}

static void both_ways(const char *what, int server, int cl)
{
    put(what, server, "s2c");
    expect_recv(what, cl, 0, "s2c", 0);
    put(what, cl, "c2s");
    expect_recv(what, server, 0, "c2s", 0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: unixstate WORKDIR");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    if (snprintf(lpath, sizeof lpath, "%s/listen.sock", argv[1]) >= (int)sizeof ((struct sockaddr_un *)0)->sun_path ||
        snprintf(qpath, sizeof qpath, "%s/seq.sock", argv[1]) >= (int)sizeof ((struct sockaddr_un *)0)->sun_path)
        FAIL("workdir path too long for a unix socket: %s", argv[1]);
    signal(SIGPIPE, SIG_IGN);

    sockpair(SOCK_STREAM, &fd[X], &fd[Y]);
    put("X", fd[X], "x2y");
    put("Y", fd[Y], "y2x");
    if (shutdown(fd[X], SHUT_WR) || shutdown(fd[Y], SHUT_RD))
        FAIL("shutdown: %s", strerror(errno));
    int types[3] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM }, gone;
    for (int t = 0; t < 3; t++) {
        sockpair(types[t], &fd[SS + t], &gone);
        put("closing peer", gone, "bye");
        close(gone);
    }
    fd[L] = listener(SOCK_STREAM, lpath, 8);
    fcntl(fd[L], F_SETFL, O_NONBLOCK);
    fd[C1] = client(SOCK_STREAM, lpath, 0);
    fd[C2] = client(SOCK_STREAM, lpath, 0);
    fd[LQ] = listener(SOCK_SEQPACKET, qpath, 4);
    fd[CQ] = client(SOCK_SEQPACKET, qpath, 0);

    for (int i = 0; i < NS; i++) {
        self0[i] = getname(i, 0);
        peer0[i] = getname(i, 1);
        poll0[i] = poll1(i);
    }
    say("POLL X=0x%x Y=0x%x SS=0x%x QS=0x%x DS=0x%x C1=0x%x C2=0x%x CQ=0x%x", poll0[X], poll0[Y], poll0[SS],
        poll0[QS], poll0[DS], poll0[C1], poll0[C2], poll0[CQ]);
    /* what the kernel gave here (6.18); a restore must give the same */
    if (strcmp(peer0[C1].a.sun_path, lpath) || strcmp(peer0[CQ].a.sun_path, qpath) || peer0[SS].err ||
        peer0[SS].len != sizeof(sa_family_t) || peer0[DS].err || self0[C1].len != sizeof(sa_family_t))
        FAIL("setup: socket names are not as expected");
    check(0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n);
            expect_recv("Y", fd[Y], 0, "x2y", 0);
            expect_recv("Y after its data", fd[Y], 0, "", 0);
            expect_recv("X", fd[X], 0, "y2x", 0);
            expect_recv("X after its data", fd[X], 0, NULL, EAGAIN);
            put("Y->X", fd[Y], "more");
            expect_recv("X", fd[X], 0, "more", 0);
            expect_recv("SS", fd[SS], 0, "bye", 0);
            expect_recv("SS after bye", fd[SS], 0, "", 0);
            expect_recv("QS", fd[QS], 0, "bye", 0);
            expect_recv("QS after bye", fd[QS], 0, "", 0);
            expect_recv("DS", fd[DS], 0, "bye", 0);
            expect_recv("DS after bye", fd[DS], 0, NULL, EAGAIN);
            expect_send_err("DS, first send to the dead peer", fd[DS], ECONNREFUSED);
            expect_send_err("DS, second send", fd[DS], ENOTCONN);
            if (getname(DS, 1).err != ENOTCONN)
                FAIL("DS: getpeername after the failed send: %s, expected ENOTCONN", strerror(getname(DS, 1).err));

            int extra[8], nextra = 0;
            while (nextra < 8 && (extra[nextra] = client(SOCK_STREAM, lpath, 1)) >= 0)
                nextra++;
            if (nextra != 7)
                FAIL("L took %d more connections, expected 7 (backlog 8 + 1 - 2 waiting)", nextra);
            int a1 = take(fd[L], "L #1"), a2 = take(fd[L], "L #2");
            expect_recv("accepted #1 (C1)", a1, 0, NULL, EAGAIN);
            expect_recv("accepted #2 (C2)", a2, 0, NULL, EAGAIN);
            both_ways("C1", a1, fd[C1]);
            both_ways("C2", a2, fd[C2]);
            for (int i = 0; i < nextra; i++)
                close(take(fd[L], "L extra"));
            int more = accept(fd[L], NULL, NULL);
            if (more >= 0 || errno != EAGAIN)
                FAIL("L: a connection more than expected (%s)", more >= 0 ? "accepted" : strerror(errno));
            int aq = take(fd[LQ], "LQ");
            expect_recv("LQ's connection", aq, 0, NULL, EAGAIN);
            both_ways("CQ", aq, fd[CQ]);
            say("PASS %ld", n - 1);
            return 0;
        }
        check(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
