/* events: the fds event loops are made of — eventfd, timerfd, signalfd, epoll — and sockets that
 * wait for clients: a listening TCP socket, a listening unix socket bound to a path, a bound UDP
 * socket. One epoll set watches them all, as in a server's main loop.
 * argv[1] = workdir, argv[2] = TCP port, argv[3] = UDP port. Protocol as in README.md; prints
 * "tick <n> timer=<expirations> usr1=<signals>". A client connecting to the TCP or unix socket
 * gets "hello <n>\n" and the connection is closed; a UDP datagram is answered with "pong".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include "target.h"

static int listen_tcp(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 17))
        FAIL("tcp listen on %d: %s", port, strerror(errno));
    return s;
}

static int listen_unix(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        FAIL("socket path too long: %s", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    unlink(path);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 5))
        FAIL("unix listen on %s: %s", path, strerror(errno));
    return s;
}

static int bind_udp(int port)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a))
        FAIL("udp bind on %d: %s", port, strerror(errno));
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        FAIL("usage: events WORKDIR TCPPORT UDPPORT");
    char stop[4096], sock_path[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    snprintf(sock_path, sizeof sock_path, "%s/events.sock", argv[1]);

    sigset_t usr1_set;
    sigemptyset(&usr1_set);
    sigaddset(&usr1_set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1_set, NULL);
    int sfd = signalfd(-1, &usr1_set, SFD_NONBLOCK | SFD_CLOEXEC);
    int efd = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);     /* five tokens, taken one per read */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {.it_interval = {0, 50 * 1000 * 1000}, .it_value = {0, 50 * 1000 * 1000}};
    timerfd_settime(tfd, 0, &its, NULL);
    int tcp = listen_tcp(atoi(argv[2])), unx = listen_unix(sock_path), udp = bind_udp(atoi(argv[3]));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int watched[] = {sfd, tfd, tcp, unx, udp};
    for (unsigned i = 0; i < sizeof watched / sizeof *watched; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1000 + (uint64_t)watched[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &ev))
            FAIL("epoll_ctl: %s", strerror(errno));
    }
    /* the eventfd is watched edge-triggered, to see that the flags come back too */
    struct epoll_event eev = {.events = EPOLLIN | EPOLLET, .data.u64 = 1000 + (uint64_t)efd};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &eev);

    uint64_t timer = 0, tokens_taken = 0;
    long usr1 = 0, served = 0;
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            uint64_t one;
            while (read(efd, &one, sizeof one) == sizeof one)
                tokens_taken++;
            if (tokens_taken != 5)
                FAIL("eventfd gave %lu tokens in all, expected 5", (unsigned long)tokens_taken);
            struct itimerspec now;
            timerfd_gettime(tfd, &now);
            if (now.it_interval.tv_nsec != 50 * 1000 * 1000)
                FAIL("timerfd interval is %ld ns", now.it_interval.tv_nsec);
            say("PASS %ld", n - 1);
            return 0;
        }
        if (n == 3) {   /* take two tokens early: the count left (3) must survive a checkpoint */
            uint64_t one;
            for (int i = 0; i < 2; i++)
                if (read(efd, &one, sizeof one) == sizeof one)
                    tokens_taken++;
        }
        struct epoll_event events[8];
        int got = epoll_wait(ep, events, 8, 20);
        for (int i = 0; i < got; i++) {
            int fd = (int)(events[i].data.u64 - 1000);
            if (fd == tfd) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof ticks) == sizeof ticks)
                    timer += ticks;
            } else if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si)
                    if (si.ssi_signo == SIGUSR1)
                        usr1++;
            } else if (fd == tcp || fd == unx) {
                int c = accept(fd, NULL, NULL);
                if (c >= 0) {
                    char msg[64];
                    int len = snprintf(msg, sizeof msg, "hello %ld\n", ++served);
                    if (write(c, msg, (size_t)len) != len)
                        FAIL("write to client: %s", strerror(errno));
                    close(c);
                }
            } else if (fd == udp) {
                char buf[64];
                struct sockaddr_in from;
                socklen_t fl = sizeof from;
                if (recvfrom(udp, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) > 0)
                    sendto(udp, "pong", 4, 0, (struct sockaddr *)&from, fl);
            } else if (fd != efd) {
                FAIL("epoll reported unknown data %lu", (unsigned long)events[i].data.u64);
            }
        }
        say("tick %ld timer=%lu usr1=%ld served=%ld", n, (unsigned long)timer, usr1, served);
        tick_sleep();
    }
}
