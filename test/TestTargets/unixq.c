/* unixq: messages and descriptors waiting on unix sockets, and a child that talks over seqpacket.
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 * Set up once, left unread until the final check (so each checkpoint finds them queued):
 *  - dgram socketpair D: "alpha", "" (an empty datagram), "gamma" carrying two fds (data.txt at
 *    offset 5, and the read end of pipe P, which this process also holds), "delta".
 *  - stream socketpair S: "head" then "body" carrying an fd of notes.txt that no process holds any
 *    more (closed after sending; it must be opened again at offset 3), then "tail".
 *  - seqpacket socketpair Q (both ends here): records "r1", "r22", "r333".
 *  - bound datagram socket R (<wd>/r.sock): a datagram from bound socket N (<wd>/n.sock), one from an
 *    unnamed socket, and one from a socket connect()ed to R by name (closed since).
 * Every tick: the child echoes a sequence number over seqpacket pair K (a record each way), and
 * socket C2, connect()ed by name to bound socket T (<wd>/t.sock), sends it there to be read back.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "target.h"

static int D[2], S[2], Q[2], K[2], P[2], R, N, U, C2, T, data_fd;
static struct stat data_st, notes_st, pipe_st;
static char wd[3000];

static void sendfds(int s, const void *m, size_t len, const int *fds, int nfds)
{
    char c[CMSG_SPACE(2 * sizeof(int))];
    struct iovec io = { (void *)m, len };
    struct msghdr h = { .msg_iov = &io, .msg_iovlen = 1 };
    if (nfds) {
        h.msg_control = c;
        h.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&h);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    if (sendmsg(s, &h, 0) != (ssize_t)len)
        FAIL("sendmsg: %s", strerror(errno));
}

/* Reads one message; returns its length, fills fds (up to 2) and the sender's path. */
static ssize_t recvone(int s, char *buf, size_t size, int *fds, int *nfds, char *from)
{
    char c[CMSG_SPACE(4 * sizeof(int))];
    struct sockaddr_un a = { 0 };
    struct iovec io = { buf, size };
    struct msghdr h = { .msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &io, .msg_iovlen = 1,
                        .msg_control = c, .msg_controllen = sizeof c };
    ssize_t n = recvmsg(s, &h, MSG_DONTWAIT);
    if (n < 0)
        FAIL("recvmsg on fd %d: %s", s, strerror(errno));
    *nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&h); cm; cm = CMSG_NXTHDR(&h, cm))
        if (cm->cmsg_type == SCM_RIGHTS) {
            *nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(cm), *nfds * sizeof(int));
        }
    if (from) {
        if (h.msg_namelen > sizeof(sa_family_t))
            snprintf(from, 200, "%s", a.sun_path);
        else
            from[0] = 0;
    }
    return n;
}

static void expect_msg(int s, const char *what, const char *want, int want_fds, int *fds, const char *want_from)
{
    char buf[256], from[200];
    int nfds;
    ssize_t n = recvone(s, buf, sizeof buf, fds, &nfds, want_from ? from : NULL);
    if (n != (ssize_t)strlen(want) || memcmp(buf, want, n) != 0)
        FAIL("%s: expected '%s', got %zd bytes '%.*s'", what, want, n, (int)(n > 0 ? n : 0), buf);
    if (nfds != want_fds)
        FAIL("%s '%s': expected %d fds, got %d", what, want, want_fds, nfds);
    if (want_from && strcmp(from, want_from) != 0)
        FAIL("%s '%s': expected it from '%s', got '%s'", what, want, want_from, from);
}

static void same_file(int fd, const struct stat *want, const char *what)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_ino != want->st_ino || st.st_dev != want->st_dev)
        FAIL("%s: fd %d is not the file sent", what, fd);
}

/* <wd>/<name> as a unix address; a work directory too long for sun_path is a FAIL, not a cut path. */
static struct sockaddr_un address_of(const char *name)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(wd) + 1 + strlen(name) >= sizeof a.sun_path)
        FAIL("work directory too long for a unix socket path: %s", wd);
    memcpy(a.sun_path, wd, strlen(wd));
    a.sun_path[strlen(wd)] = '/';
    memcpy(a.sun_path + strlen(wd) + 1, name, strlen(name) + 1);
    return a;
}

static int bound_dgram(const char *name)
{
    struct sockaddr_un a = address_of(name);
    unlink(a.sun_path);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0)
        FAIL("bind %s: %s", a.sun_path, strerror(errno));
    return s;
}

static void send_to(int s, const char *name, const char *m)
{
    struct sockaddr_un a = address_of(name);
    if (sendto(s, m, strlen(m), 0, (struct sockaddr *)&a, sizeof a) != (ssize_t)strlen(m))
        FAIL("sendto %s: %s", name, strerror(errno));
}

static void connect_to(int s, const char *name)
{
    struct sockaddr_un a = address_of(name);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        FAIL("connect %s: %s", name, strerror(errno));
}

static void child(void)
{
    close(K[0]);
    for (;;) {
        char buf[64];
        ssize_t n = read(K[1], buf, sizeof buf);
        if (n <= 0)
            _exit(n == 0 ? 0 : 2);
        buf[0] = 'E'; /* "seq N" -> "Eeq N" */
        if (write(K[1], buf, n) != n)
            _exit(2);
    }
}

static void final_check(long ticks)
{
    int fds[4];
    char path[3100];
    expect_msg(D[1], "dgram pair", "alpha", 0, fds, NULL);
    expect_msg(D[1], "dgram pair", "", 0, fds, NULL);
    expect_msg(D[1], "dgram pair", "gamma", 2, fds, NULL);
    same_file(fds[0], &data_st, "gamma's first fd");
    if (lseek(fds[0], 0, SEEK_CUR) != 5 || lseek(data_fd, 0, SEEK_CUR) != 5)
        FAIL("data.txt: the fd in flight and ours share offset 5, got %ld and %ld",
             (long)lseek(fds[0], 0, SEEK_CUR), (long)lseek(data_fd, 0, SEEK_CUR));
    lseek(fds[0], 7, SEEK_SET);
    if (lseek(data_fd, 0, SEEK_CUR) != 7)
        FAIL("data.txt: the fd in flight is not the same open file as ours");
    fstat(P[0], &pipe_st); /* a restored pipe is a new one: compare with ours as it is now */
    same_file(fds[1], &pipe_st, "gamma's second fd");
    if (write(P[1], "p", 1) != 1)
        FAIL("pipe write");
    char c;
    if (read(fds[1], &c, 1) != 1 || c != 'p')
        FAIL("the pipe end in flight does not read what our write end wrote");
    expect_msg(D[1], "dgram pair", "delta", 0, fds, NULL);

    char buf[64];
    int nfds;
    ssize_t n = recvone(S[1], buf, sizeof buf, fds, &nfds, NULL);
    if (n != 8 || memcmp(buf, "headbody", 8) != 0 || nfds != 1)
        FAIL("stream pair: expected 'headbody' with 1 fd, got %zd bytes '%.*s' with %d fds", n, (int)(n > 0 ? n : 0), buf, nfds);
    same_file(fds[0], &notes_st, "the stream's fd");
    if (lseek(fds[0], 0, SEEK_CUR) != 3 || read(fds[0], buf, 4) != 3 || memcmp(buf, "es\n", 3) != 0)
        FAIL("notes.txt in flight: expected offset 3 and 'es'");
    n = recvone(S[1], buf, sizeof buf, fds, &nfds, NULL);
    if (n != 4 || memcmp(buf, "tail", 4) != 0 || nfds != 0)
        FAIL("stream pair: expected 'tail', got %zd bytes", n);

    expect_msg(Q[1], "seqpacket pair", "r1", 0, fds, NULL);
    expect_msg(Q[1], "seqpacket pair", "r22", 0, fds, NULL);
    expect_msg(Q[1], "seqpacket pair", "r333", 0, fds, NULL);

    snprintf(path, sizeof path, "%s/n.sock", wd);
    expect_msg(R, "bound socket", "from-n", 0, fds, path);
    expect_msg(R, "bound socket", "from-unnamed", 0, fds, "");
    expect_msg(R, "bound socket", "from-c", 0, fds, "");
    if (recv(D[1], buf, sizeof buf, MSG_DONTWAIT) != -1 || recv(R, buf, sizeof buf, MSG_DONTWAIT) != -1
        || recv(Q[1], buf, sizeof buf, MSG_DONTWAIT) != -1)
        FAIL("more queued than was sent");
    close(K[0]);
    int status;
    waitpid(-1, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("child ended with status %d", status);
    say("PASS %ld", ticks);
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: unixq WORKDIR");
    snprintf(wd, sizeof wd, "%s", argv[1]);
    char path[3100], stop[3100];
    snprintf(stop, sizeof stop, "%s/stop", wd);
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, D) || socketpair(AF_UNIX, SOCK_STREAM, 0, S)
        || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, Q) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, K) || pipe(P))
        FAIL("setup: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/data.txt", wd);
    data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (data_fd < 0 || write(data_fd, "0123456789", 10) != 10 || lseek(data_fd, 5, SEEK_SET) != 5)
        FAIL("data.txt: %s", strerror(errno));
    fstat(data_fd, &data_st);
    sendfds(D[0], "alpha", 5, NULL, 0);
    sendfds(D[0], "", 0, NULL, 0);
    int two[2] = { data_fd, P[0] };
    sendfds(D[0], "gamma", 5, two, 2);
    sendfds(D[0], "delta", 5, NULL, 0);

    snprintf(path, sizeof path, "%s/notes.txt", wd);
    int notes = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (notes < 0 || write(notes, "notes\n", 6) != 6 || lseek(notes, 3, SEEK_SET) != 3)
        FAIL("notes.txt: %s", strerror(errno));
    fstat(notes, &notes_st);
    sendfds(S[0], "head", 4, NULL, 0);
    sendfds(S[0], "body", 4, &notes, 1);
    close(notes);
    sendfds(S[0], "tail", 4, NULL, 0);

    sendfds(Q[0], "r1", 2, NULL, 0);
    sendfds(Q[0], "r22", 3, NULL, 0);
    sendfds(Q[0], "r333", 4, NULL, 0);

    R = bound_dgram("r.sock");
    N = bound_dgram("n.sock");
    U = socket(AF_UNIX, SOCK_DGRAM, 0);
    int C = socket(AF_UNIX, SOCK_DGRAM, 0);
    send_to(N, "r.sock", "from-n");
    send_to(U, "r.sock", "from-unnamed");
    connect_to(C, "r.sock");
    if (send(C, "from-c", 6, 0) != 6)
        FAIL("send on connected socket: %s", strerror(errno));
    close(C);
    T = bound_dgram("t.sock");
    C2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect_to(C2, "t.sock");

    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        child();
    close(K[1]);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0)
            final_check(n - 1);
        char m[64], got[64];
        int len = snprintf(m, sizeof m, "seq %ld", n);
        if (write(K[0], m, len) != len)
            FAIL("seqpacket to child: %s", strerror(errno));
        ssize_t r = read(K[0], got, sizeof got);
        if (r != len || got[0] != 'E' || memcmp(got + 1, m + 1, len - 1) != 0)
            FAIL("child echoed %zd bytes '%.*s' for '%s'", r, (int)(r > 0 ? r : 0), got, m);
        if (send(C2, m, len, 0) != len)
            FAIL("send to t.sock: %s", strerror(errno));
        r = recv(T, got, sizeof got, 0);
        if (r != len || memcmp(got, m, len) != 0)
            FAIL("t.sock got %zd bytes for '%s'", r, m);
        say("tick %ld", n);
        tick_sleep();
    }
}
