/* udpconn: connected UDP sockets with datagrams waiting. argv[1] = workdir, argv[2] = port A,
 * argv[3] = port B. Protocol as in README.md.
 * On 127.0.0.1: U1 bound to A and connect()ed to B, U2 bound to B and connected to A; the same pair on
 * ::1 (V1, V2) unless socket(AF_INET6) or binding ::1 fails (then a "NOTE" line says so). U1 sends U2
 * three datagrams of 5, 333 and 1400 bytes, left queued on U2 until the final check (the same on V2).
 * An unconnected socket S (S6) on an ephemeral port plays the stranger.
 * Each tick, for each pair: getsockname/getpeername of both equal setup; SIOCINQ of U2 is 5 (the
 * first waiting datagram); U2 sends "ping <n>" on its connection and U1 receives it (poll, 1 s) from
 * port B; S sends a datagram to U1, which must NOT arrive (a connected UDP socket takes datagrams from
 * its peer only; poll 5 ms), and one to U2 (dropped too, checked at the end).
 * Final check: U2 gives the three datagrams in order (sizes, contents), then EAGAIN (none of the
 * stranger's got in); then U1 -> U2 works too (from port A). (The reply direction U1 -> U2 is not
 * used during the ticks: anything it sent would queue behind the waiting datagrams.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include "target.h"

static const size_t sizes[3] = { 5, 333, 1400 };

struct pair {
    const char *name;
    int fam, u1, u2, s;
    struct sockaddr_storage a, b, self1, peer1, self2, peer2;
    socklen_t alen;
};

static void addr(struct pair *p, struct sockaddr_storage *out, int port)
{
    memset(out, 0, sizeof *out);
    if (p->fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        p->alen = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        p->alen = sizeof *a;
    }
}

static void fill(char *b, int i)
{
    for (size_t j = 0; j < sizes[i]; j++)
        b[j] = (char)(i * 37 + j);
}

static void name_of(struct pair *p, int s, int peer, struct sockaddr_storage *out)
{
    socklen_t len = sizeof *out;
    memset(out, 0, sizeof *out);
    if ((peer ? getpeername : getsockname)(s, (struct sockaddr *)out, &len) != 0 || len != p->alen)
        FAIL("%s: get%sname: %s (len %u)", p->name, peer ? "peer" : "sock", strerror(errno), len);
}

/* returns 0 on success, -1 (errno set) if the family or ::1 is not there */
static int setup(struct pair *p, int fam, int pa, int pb)
{
    p->fam = fam;
    p->name = fam == AF_INET ? "v4" : "v6";
    addr(p, &p->a, pa);
    addr(p, &p->b, pb);
    struct sockaddr_storage any;
    addr(p, &any, 0);
    p->u1 = socket(fam, SOCK_DGRAM, 0);
    p->u2 = socket(fam, SOCK_DGRAM, 0);
    p->s = socket(fam, SOCK_DGRAM, 0);
    if (p->u1 < 0 || p->u2 < 0 || p->s < 0)
        return -1;
    if (bind(p->u1, (struct sockaddr *)&p->a, p->alen) != 0 || bind(p->u2, (struct sockaddr *)&p->b, p->alen) != 0 ||
        bind(p->s, (struct sockaddr *)&any, p->alen) != 0) {
        if (fam == AF_INET6 && errno == EADDRNOTAVAIL)
            return -1;
        FAIL("%s: bind (ports %d, %d): %s", p->name, pa, pb, strerror(errno));
    }
    if (connect(p->u1, (struct sockaddr *)&p->b, p->alen) != 0 || connect(p->u2, (struct sockaddr *)&p->a, p->alen) != 0)
        FAIL("%s: connect: %s", p->name, strerror(errno));
    static char b[1400];
    for (int i = 0; i < 3; i++) {
        fill(b, i);
        if (send(p->u1, b, sizes[i], 0) != (ssize_t)sizes[i])
            FAIL("%s: send datagram %d: %s", p->name, i, strerror(errno));
    }
    name_of(p, p->u1, 0, &p->self1);
    name_of(p, p->u1, 1, &p->peer1);
    name_of(p, p->u2, 0, &p->self2);
    name_of(p, p->u2, 1, &p->peer2);
    if (memcmp(&p->self1, &p->a, p->alen) || memcmp(&p->peer1, &p->b, p->alen) || memcmp(&p->self2, &p->b, p->alen) ||
        memcmp(&p->peer2, &p->a, p->alen))
        FAIL("%s: the sockets' names are not the addresses bound and connected to", p->name);
    return 0;
}

static void recv_from(struct pair *p, int s, const char *want, size_t len, const struct sockaddr_storage *from, long n)
{
    struct pollfd pf = { .fd = s, .events = POLLIN };
    if (poll(&pf, 1, 1000) != 1)
        FAIL("tick %ld: %s: nothing arrived in 1 s (waiting for %zu bytes)", n, p->name, len);
    static char b[2048];
    struct sockaddr_storage f;
    socklen_t fl = sizeof f;
    memset(&f, 0, sizeof f);
    ssize_t got = recvfrom(s, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&f, &fl);
    if (got != (ssize_t)len || memcmp(b, want, len) != 0)
        FAIL("tick %ld: %s: received %zd bytes, expected %zu ('%.*s')", n, p->name, got, len, (int)(len < 20 ? len : 20), want);
    if (fl != p->alen || memcmp(&f, from, fl) != 0)
        FAIL("tick %ld: %s: datagram from the wrong address", n, p->name);
}

static void check(struct pair *p, long n)
{
    struct sockaddr_storage x;
    name_of(p, p->u1, 0, &x);
    if (memcmp(&x, &p->self1, p->alen))
        FAIL("tick %ld: %s: U1's address changed", n, p->name);
    name_of(p, p->u1, 1, &x);
    if (memcmp(&x, &p->peer1, p->alen))
        FAIL("tick %ld: %s: U1's peer changed", n, p->name);
    name_of(p, p->u2, 0, &x);
    if (memcmp(&x, &p->self2, p->alen))
        FAIL("tick %ld: %s: U2's address changed", n, p->name);
    name_of(p, p->u2, 1, &x);
    if (memcmp(&x, &p->peer2, p->alen))
        FAIL("tick %ld: %s: U2's peer changed", n, p->name);
    int inq = -1;
    if (ioctl(p->u2, SIOCINQ, &inq) != 0 || inq != (int)sizes[0])
        FAIL("tick %ld: %s: SIOCINQ of U2 is %d, expected %zu (the first waiting datagram)", n, p->name, inq, sizes[0]);
    char ping[32];
    int len = snprintf(ping, sizeof ping, "ping %ld", n);
    if (send(p->u2, ping, (size_t)len, 0) != len)
        FAIL("tick %ld: %s: U2 send: %s", n, p->name, strerror(errno));
    recv_from(p, p->u1, ping, (size_t)len, &p->b, n);
    if (sendto(p->s, "stranger", 8, 0, (struct sockaddr *)&p->a, p->alen) != 8 ||
        sendto(p->s, "stranger", 8, 0, (struct sockaddr *)&p->b, p->alen) != 8)
        FAIL("tick %ld: %s: the stranger's sendto: %s", n, p->name, strerror(errno));
    struct pollfd pf = { .fd = p->u1, .events = POLLIN };
    if (poll(&pf, 1, 5) != 0)
        FAIL("tick %ld: %s: U1 (connected to port B) got a datagram from the stranger", n, p->name);
}

static void final(struct pair *p)
{
    static char want[1400];
    for (int i = 0; i < 3; i++) {
        fill(want, i);
        recv_from(p, p->u2, want, sizes[i], &p->a, -1);
    }
    char b[16];
    errno = 0;
    if (recv(p->u2, b, sizeof b, MSG_DONTWAIT) != -1 || errno != EAGAIN)
        FAIL("%s: U2 holds more than the three datagrams (%s)", p->name, strerror(errno));
    if (send(p->u1, "back", 4, 0) != 4)
        FAIL("%s: U1 send: %s", p->name, strerror(errno));
    recv_from(p, p->u2, "back", 4, &p->a, -1);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        FAIL("usage: udpconn WORKDIR PORT_A PORT_B");
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    int pa = atoi(argv[2]), pb = atoi(argv[3]);
    struct pair pairs[2];
    int np = 1;
    setup(&pairs[0], AF_INET, pa, pb);
    if (setup(&pairs[1], AF_INET6, pa, pb) == 0)
        np = 2;
    else
        say("NOTE no IPv6 pair: %s", strerror(errno));

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            for (int i = 0; i < np; i++) {
                check(&pairs[i], n);
                final(&pairs[i]);
            }
            say("PASS %ld", n - 1);
            return 0;
        }
        for (int i = 0; i < np; i++)
            check(&pairs[i], n);
        say("tick %ld", n);
        tick_sleep();
    }
}
