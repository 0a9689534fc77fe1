/* udpseq: connected UDP sockets whose receive queues hold numbered datagrams at every moment.
 * argv[1] = workdir, argv[2] = mode, argv[3] = 4 or 6 (127.0.0.1 or ::1). Protocol as in README.md.
 * A datagram: its sequence number (4 bytes, big endian), then 4 + seq*97 % 1400 bytes of (seq*31 + j).
 *
 * pair: A and B bound to ephemeral ports, each connect()ed to the other. Each sends the other BACKLOG
 *   datagrams, then each tick: the names are checked, each sends 2 and receives 2 (poll, 1 s), so
 *   BACKLOG wait in each queue between ticks. Every datagram received: the next sequence number, its
 *   content, from the peer's address. Tick line: `tick <n> a=<last A received> b=<last B received>`.
 *   The end receives what is left (BACKLOG each way), finds nothing more, and prints PASS.
 * client <port>: C bound to an ephemeral port, connect()ed to <port> (the test's socket), with
 *   SO_PEEK_OFF 0; prints `READY <C's port>`. Each tick: the names and SO_PEEK_OFF are checked, C sends
 *   "c <n>" to its peer. When <wd>/peek exists, once: C peeks the first datagram (it must be number 1),
 *   which moves SO_PEEK_OFF past it, and prints `PEEKED <offset>`. When <wd>/read exists: C peeks the
 *   next one at its offset (number 2, if it peeked), then receives everything waiting, printing
 *   `GOT <seq>` for each (numbers from 1 on, in order, from the peer). Tick line `tick <n> got=<last>`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include "target.h"

#define BACKLOG 5

static int fam;
static socklen_t alen;
static char stop_path[4200], peek_path[4200], read_path[4200];

static void loopback(struct sockaddr_storage *a, int port)
{
    memset(a, 0, sizeof *a);
    if (fam == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)a;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        alen = sizeof *v4;
    } else {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        v6->sin6_addr = in6addr_loopback;
        alen = sizeof *v6;
    }
}

static int port_of(const struct sockaddr_storage *a)
{
    return ntohs(fam == AF_INET ? ((const struct sockaddr_in *)a)->sin_port : ((const struct sockaddr_in6 *)a)->sin6_port);
}

static void name_of(int s, int peer, struct sockaddr_storage *out)
{
    socklen_t len = sizeof *out;
    memset(out, 0, sizeof *out);
    if ((peer ? getpeername : getsockname)(s, (struct sockaddr *)out, &len) != 0 || len != alen)
        FAIL("get%sname: %s (len %u)", peer ? "peer" : "sock", strerror(errno), len);
}

static size_t make(unsigned seq, char *b)
{
    size_t len = 8 + (seq * 97u) % 1400;
    b[0] = (char)(seq >> 24); b[1] = (char)(seq >> 16); b[2] = (char)(seq >> 8); b[3] = (char)seq;
    for (size_t j = 4; j < len; j++)
        b[j] = (char)(seq * 31 + j);
    return len;
}

static void send_seq(int s, unsigned seq, const char *who)
{
    char b[1500];
    size_t len = make(seq, b);
    if (send(s, b, len, 0) != (ssize_t)len)
        FAIL("%s: send %u: %s", who, seq, strerror(errno));
}

/* Checks one received datagram: number want, its content, from peer. */
static void check(const char *who, const char *b, ssize_t got, const struct sockaddr_storage *from, socklen_t fl,
                  const struct sockaddr_storage *peer, unsigned want)
{
    if (got < 4)
        FAIL("%s: a datagram of %zd bytes, expected number %u", who, got, want);
    unsigned seq = (unsigned)(unsigned char)b[0] << 24 | (unsigned)(unsigned char)b[1] << 16 | (unsigned)(unsigned char)b[2] << 8 | (unsigned char)b[3];
    if (seq != want)
        FAIL("%s: received datagram %u, expected %u (lost, duplicated or reordered)", who, seq, want);
    char w[1500];
    size_t len = make(seq, w);
    if ((size_t)got != len || memcmp(b, w, len) != 0)
        FAIL("%s: datagram %u has %zd bytes or content not as sent (%zu expected)", who, seq, got, len);
    if (fl != alen || memcmp(from, peer, alen) != 0)
        FAIL("%s: datagram %u came from port %d, not from the peer (port %d)", who, seq, port_of(from), port_of(peer));
}

static void recv_seq(int s, const struct sockaddr_storage *peer, unsigned want, const char *who)
{
    struct pollfd pf = { .fd = s, .events = POLLIN };
    if (poll(&pf, 1, 1000) != 1)
        FAIL("%s: datagram %u did not arrive in 1 s", who, want);
    char b[1500];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    memset(&from, 0, sizeof from);
    ssize_t got = recvfrom(s, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    check(who, b, got, &from, fl, peer, want);
}

static void nothing_more(int s, const char *who)
{
    char b[16];
    errno = 0;
    if (recv(s, b, sizeof b, MSG_DONTWAIT) != -1 || errno != EAGAIN)
        FAIL("%s: more datagrams than were sent (%s)", who, strerror(errno));
}

static int pair(void)
{
    int a = socket(fam, SOCK_DGRAM, 0), b = socket(fam, SOCK_DGRAM, 0);
    struct sockaddr_storage any, an, bn, ap, bp;
    loopback(&any, 0);
    if (a < 0 || b < 0 || bind(a, (struct sockaddr *)&any, alen) != 0 || bind(b, (struct sockaddr *)&any, alen) != 0)
        FAIL("socket/bind: %s", strerror(errno));
    name_of(a, 0, &an);
    name_of(b, 0, &bn);
    if (connect(a, (struct sockaddr *)&bn, alen) != 0 || connect(b, (struct sockaddr *)&an, alen) != 0)
        FAIL("connect: %s", strerror(errno));
    unsigned sa = 0, sb = 0, ra = 0, rb = 0; /* sent by A, B; received by A, B */
    for (int i = 0; i < BACKLOG; i++) {
        send_seq(a, ++sa, "A");
        send_seq(b, ++sb, "B");
    }
    say("READY %d %d", port_of(&an), port_of(&bn));
    for (long n = 1;; n++) {
        struct sockaddr_storage x;
        name_of(a, 0, &x);
        if (memcmp(&x, &an, alen)) FAIL("tick %ld: A's address changed", n);
        name_of(a, 1, &x);
        if (memcmp(&x, &bn, alen)) FAIL("tick %ld: A's peer changed", n);
        name_of(b, 0, &x);
        if (memcmp(&x, &bn, alen)) FAIL("tick %ld: B's address changed", n);
        name_of(b, 1, &x);
        if (memcmp(&x, &an, alen)) FAIL("tick %ld: B's peer changed", n);
        ap = bn;
        bp = an;
        if (access(stop_path, F_OK) == 0) {
            while (ra < sb) recv_seq(a, &ap, ++ra, "A");
            while (rb < sa) recv_seq(b, &bp, ++rb, "B");
            nothing_more(a, "A");
            nothing_more(b, "B");
            say("PASS %ld", n - 1);
            return 0;
        }
        for (int i = 0; i < 2; i++) {
            send_seq(a, ++sa, "A");
            send_seq(b, ++sb, "B");
        }
        for (int i = 0; i < 2; i++) {
            recv_seq(a, &ap, ++ra, "A");
            recv_seq(b, &bp, ++rb, "B");
        }
        say("tick %ld a=%u b=%u", n, ra, rb);
        tick_sleep();
    }
}

static int client(int peer_port)
{
    int c = socket(fam, SOCK_DGRAM, 0);
    struct sockaddr_storage any, self, peer, x;
    loopback(&any, 0);
    loopback(&peer, peer_port);
    if (c < 0 || bind(c, (struct sockaddr *)&any, alen) != 0 || connect(c, (struct sockaddr *)&peer, alen) != 0)
        FAIL("socket/bind/connect: %s", strerror(errno));
    int offset = 0;
    if (setsockopt(c, SOL_SOCKET, SO_PEEK_OFF, &offset, sizeof offset) != 0)
        FAIL("SO_PEEK_OFF: %s", strerror(errno));
    name_of(c, 0, &self);
    say("READY %d", port_of(&self));
    int peeked = 0;
    unsigned got = 0;
    for (long n = 1;; n++) {
        name_of(c, 0, &x);
        if (memcmp(&x, &self, alen)) FAIL("tick %ld: C's address changed", n);
        name_of(c, 1, &x);
        if (memcmp(&x, &peer, alen)) FAIL("tick %ld: C's peer changed", n);
        int now = -2;
        socklen_t ol = sizeof now;
        if (getsockopt(c, SOL_SOCKET, SO_PEEK_OFF, &now, &ol) != 0 || now != offset)
            FAIL("tick %ld: SO_PEEK_OFF is %d, expected %d", n, now, offset);
        if (access(stop_path, F_OK) == 0) {
            say("PASS %ld", n - 1);
            return 0;
        }
        char b[1500], t[32];
        int len = snprintf(t, sizeof t, "c %ld", n);
        if (send(c, t, (size_t)len, 0) != len)
            FAIL("tick %ld: send: %s", n, strerror(errno));
        struct sockaddr_storage from;
        socklen_t fl;
        if (!peeked && access(peek_path, F_OK) == 0) {
            fl = sizeof from;
            ssize_t r = recvfrom(c, b, sizeof b, MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
            check("C (peek)", b, r, &from, fl, &peer, 1);
            offset += (int)r;
            peeked = 1;
            say("PEEKED %d", offset);
        }
        if (access(read_path, F_OK) == 0) {
            if (peeked == 1) {
                fl = sizeof from;
                ssize_t r = recvfrom(c, b, sizeof b, MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
                check("C (peek at its offset)", b, r, &from, fl, &peer, 2);
                peeked = 2;
            }
            for (;;) {
                fl = sizeof from;
                memset(&from, 0, sizeof from);
                ssize_t r = recvfrom(c, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
                if (r < 0 && errno == EAGAIN)
                    break;
                check("C", b, r, &from, fl, &peer, got + 1);
                say("GOT %u", ++got);
            }
            /* Reading moved the offset back; from here on it is the kernel's business. */
            ol = sizeof offset;
            getsockopt(c, SOL_SOCKET, SO_PEEK_OFF, &offset, &ol);
        }
        say("tick %ld got=%u", n, got);
        tick_sleep();
    }
}

int main(int argc, char **argv)
{
    if (argc < 4)
        FAIL("usage: udpseq WORKDIR pair|client 4|6 [PORT]");
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    snprintf(peek_path, sizeof peek_path, "%s/peek", argv[1]);
    snprintf(read_path, sizeof read_path, "%s/read", argv[1]);
    fam = strcmp(argv[3], "6") == 0 ? AF_INET6 : AF_INET;
    if (strcmp(argv[2], "pair") == 0)
        return pair();
    if (strcmp(argv[2], "client") == 0 && argc > 4)
        return client(atoi(argv[4]));
    FAIL("unknown mode %s", argv[2]);
}
