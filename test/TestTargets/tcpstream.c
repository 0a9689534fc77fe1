/* tcpstream: one established TCP connection over loopback, both directions streaming as fast as they
 * can, with bytes waiting in the send and receive queues of both ends most of the time.
 * "tcpstream server WORKDIR [--v6|--mapped]": listens on 127.0.0.1 (--v6: ::1; --mapped: an AF_INET6
 *     socket, IPV6_V6ONLY off, bound to ::ffff:127.0.0.1) on an ephemeral port, writes "<port>\n" to
 *     <wd>/port (via <wd>/port.tmp and rename), prints READY, accepts ONE client, closes the listener.
 * "tcpstream client WORKDIR [--v6|--mapped]": waits (up to 10 s) for <wd>/port and connects to
 *     127.0.0.1 (--v6: ::1; --mapped: an AF_INET6 socket to ::ffff:127.0.0.1), prints READY.
 * "tcpstream both WORKDIR [--v6|--mapped]": one process tree: the server (parent) forks the client
 *     (child) after listening; at the end the parent also waits for the child and expects status 0.
 * The server logs to <wd>/server.log, the client to <wd>/client.log (stdout and stderr).
 * With --mapped on both sides, both ends are AF_INET6 sockets whose names are v4-mapped addresses.
 * "--addr A" (IPv4): the server listens on A instead of 127.0.0.1, the client connects to A (a
 * group's own address, reached from another network namespace).
 * Each prints "CONN <inet|inet6|inet6-mapped> local <addr>:<port> peer <addr>:<port>" once connected
 * and "OPTS <name>=<value> ..." (the reference values below).
 *
 * Stream format (each direction, client->server and server->client, has its own seed): a sequence of
 * records. DATA record k (k = 0, 1, ...) = an 8-byte little-endian header
 *     0xDA7A << 48 | (k & 0xffffff) << 24 | len(k),   len(k) = 1 + mix(seed ^ 0x1e9 ^ k << 20) % 65536
 * then len(k) payload bytes; payload byte p (p counts payload bytes from the start of the direction)
 * is byte p % 8 (little-endian) of mix(seed ^ p / 8 * 0x100000001b3), mix = splitmix64. Everything is a function of the offset, so the receiver checks every
 * byte as it arrives: a lost, repeated, reordered or changed byte is a FAIL naming the stream offset,
 * the record, the expected and the received byte. The one record the receiver cannot predict is the
 * END record, sent in place of DATA record k:
 *     header 0xE4D0 << 48 | (k & 0xffffff) << 24 | 16, payload [u64 stream bytes before this header]
 *     [u64 k = number of DATA records], both little-endian
 * which the receiver checks against what it received. After END the sender shuts its side down
 * (SHUT_WR): any byte after END is a FAIL; the end of file is expected only after END.
 *
 * Both sockets are non-blocking; one poll() loop per process reads and writes (no threads, so a plain
 * `gcc -O1 -g -o tcpstream tcpstream.c` builds it). Sending is as fast as the peer takes and never
 * stops (until the end). Reading goes in periods of 2 s (the server's start 300 ms into its run, the
 * client's 1300 ms): 200 ms nothing, then 1300 ms at most 24 MiB/s, then 500 ms as fast as it can.
 * So the reader's receive queue and the writer's send queue are full during a pause and mostly full
 * while the reader is held back (the writer can go faster), and they drain in the fast phase; as the
 * two sides' periods are shifted, all four queues are non-empty most of the time.
 *
 * Options (set before connect / on the listener before listen; the accepted socket inherits them):
 *     server: TCP_NODELAY 1, SO_RCVBUF 96 KiB, SO_SNDBUF 72 KiB, SO_KEEPALIVE 0
 *     client: SO_KEEPALIVE 1 with TCP_KEEPIDLE 47, TCP_KEEPINTVL 9, TCP_KEEPCNT 4, TCP_NODELAY 0,
 *             SO_RCVBUF 80 KiB, SO_SNDBUF 104 KiB
 * The values getsockopt returns right after setting them (the kernel doubles the buffer sizes) are the
 * reference; the set ones are also compared with what was asked. Every tick checks all seven options
 * against the reference, SO_TYPE, SO_DOMAIN, F_GETFL (O_RDWR|O_NONBLOCK), getsockname/getpeername
 * against the connection's start, and the TCP state: ESTABLISHED, or CLOSE_WAIT (the peer's FIN
 * follows its END at once, so the kernel can have it while bytes before the END still wait; whether
 * the END really comes before the end of file is the stream's check).
 *
 * Ticks: every 20 ms (the loop's poll timeout), "tick <n> sent <s> received <r>" printed every 5th
 * tick (s, r: stream bytes, headers included). At the start of each tick: if <wd>/stop exists, the
 * end begins (it also begins when the peer's END arrives):
 *     - check the socket as above; no more pauses (reading continues throughout: no deadlock);
 *     - finish the current DATA record, send END, then shutdown(SHUT_WR);
 *     - keep reading until the peer's END (checked) and then its end of file;
 *     - the seven options again (not the names: with both sides shut down the socket is closed and
 *       has none), then "PASS <n> sent <s> received <r>" (n = ticks completed; s and r
 *       include the END records, so one side's sent equals the other's received), exit 0.
 *   If the end is not complete within 30 s: FAIL. Timing uses a clock that advances by at most 1 s
 *   per loop iteration and never goes back, so a process frozen for a checkpoint (or restored under
 *   another CLOCK_MONOTONIC) just carries on; there is no limit on a pause before the end.
 * FAIL (exit 1) on: a wrong byte, ECONNRESET/EPIPE/any socket error, an end of file before END, a
 * byte after END, END totals that differ from what was received, an option, name, flag or state that
 * changed, or the client (in "both") exiting other than 0.
 * -DCORRUPT_TEST=<offset> builds a client that flips bit 5 of the byte at that offset of the stream
 * it sends: the server must FAIL.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "target.h"

#define CHUNK 65536
#define PERIOD_MS 2000
#define PAUSE_MS 200                    /* phases of a period: no reading ... */
#define SLOW_UNTIL_MS 1500              /* ... then reading at SLOW_BYTES_PER_MS ... */
#define SLOW_BYTES_PER_MS 25166         /* (24 MiB/s) ... then reading as fast as it can */
#define END_LIMIT_MS 30000

static char wd[3000];
static int is_server, fam, mapped;
static const char *peer_name;   /* "client" in the server, "server" in the client */

/* ---- the clock: never backwards, at most 1 s per step ---- */
static uint64_t vnow;
static int64_t last_real = -1;
static uint64_t vclock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t real = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (last_real >= 0) {
        int64_t d = real - last_real;
        vnow += d < 0 ? 0 : d > 1000 ? 1000 : (uint64_t)d;
    }
    last_real = real;
    return vnow;
}

/* ---- the byte stream ---- */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
#define SEED_C2S 0xc11e27e05e7ec0deull
#define SEED_S2C 0x5e77e2c1ba5eba11ull

struct stream {
    uint64_t seed;
    uint64_t bytes;     /* stream bytes so far (headers included) */
    uint64_t k;         /* the current record's index = DATA records completed */
    uint32_t len;       /* payload length of record k */
    uint32_t pos;       /* position inside record k, 0 .. 8 + len - 1 */
    uint64_t payload;   /* payload bytes so far */
    uint64_t wi, w;     /* cache: word index and its value */
};

static uint32_t rec_len(const struct stream *s, uint64_t k) { return 1 + (uint32_t)(mix(s->seed ^ 0x1e9 ^ (k << 20)) % 65536); }
static uint64_t data_hdr(uint64_t k, uint32_t len) { return 0xDA7Aull << 48 | (k & 0xffffff) << 24 | len; }
static uint64_t end_hdr(uint64_t k) { return 0xE4D0ull << 48 | (k & 0xffffff) << 24 | 16; }

static void stream_init(struct stream *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->len = rec_len(s, 0);
    s->wi = UINT64_MAX;
}
static uint8_t payload_byte(struct stream *s, uint64_t p)
{
    if (p >> 3 != s->wi) {
        s->wi = p >> 3;
        s->w = mix(s->seed ^ (s->wi * 0x100000001b3ull));
    }
    return (uint8_t)(s->w >> 8 * (p & 7));
}
/* Moves n bytes on: one header byte, or a run of payload bytes inside one record. */
static void advance(struct stream *s, uint32_t n)
{
    s->bytes += n;
    if (s->pos >= 8)
        s->payload += n;
    s->pos += n;
    if (s->pos == 8 + s->len) {
        s->k++;
        s->pos = 0;
        s->len = rec_len(s, s->k);
    }
}
static void put64(uint8_t *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> 8 * i); }
static uint64_t get64(const uint8_t *b) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << 8 * i; return v; }

/* sender */
static struct stream tx;
static uint8_t out[CHUNK + 32];
static size_t out_head, out_tail;
static int end_queued, end_sent, shut_done;

/* receiver */
static struct stream rx;
static uint8_t in[CHUNK];
static uint64_t received;               /* all bytes received, END included */
static int rx_state;                    /* 0 DATA records, 1 inside END, 2 after END */
static uint64_t rx_hdr, rx_end_at;
static uint8_t rx_end[16];
static unsigned rx_end_n;
static int rx_eof;

/* Fills out[] with the next bytes: at most CHUNK, and only up to a record boundary when ending. */
static void generate(int ending)
{
    out_head = out_tail = 0;
    if (ending && tx.pos == 0) {
        put64(out, end_hdr(tx.k));
        put64(out + 8, tx.bytes);
        put64(out + 16, tx.k);
        out_tail = 24;
        tx.bytes += 24;
        end_queued = 1;
        return;
    }
    while (out_tail < CHUNK) {
#ifdef CORRUPT_TEST
        uint64_t at = tx.bytes;
        size_t from = out_tail;
#endif
        if (tx.pos < 8) {
            out[out_tail++] = (uint8_t)(data_hdr(tx.k, tx.len) >> 8 * tx.pos);
            advance(&tx, 1);
        } else {
            size_t m = 8 + tx.len - tx.pos;
            if (m > CHUNK - out_tail)
                m = CHUNK - out_tail;
            for (size_t j = 0; j < m; j++)
                out[out_tail + j] = payload_byte(&tx, tx.payload + j);
            out_tail += m;
            advance(&tx, (uint32_t)m);
        }
#ifdef CORRUPT_TEST
        if (!is_server && at <= (uint64_t)(CORRUPT_TEST) && (uint64_t)(CORRUPT_TEST) < tx.bytes) {
            out[from + ((uint64_t)(CORRUPT_TEST) - at)] ^= 0x20;
            say("NOTE corrupting the byte at stream offset %llu", (unsigned long long)(CORRUPT_TEST));
        }
#endif
        if (ending && tx.pos == 0)
            break;
    }
}

static void take(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++, received++) {
        uint8_t c = b[i];
        if (rx_state == 2)
            FAIL("from %s: byte 0x%02x at stream offset %llu after END", peer_name, c, (unsigned long long)received);
        if (rx_state == 1) {
            rx_end[rx_end_n++] = c;
            if (rx_end_n == 16) {
                uint64_t bytes = get64(rx_end), recs = get64(rx_end + 8);
                if (bytes != rx_end_at || recs != rx.k)
                    FAIL("from %s: END says %llu bytes in %llu records before it, received %llu in %llu", peer_name,
                         (unsigned long long)bytes, (unsigned long long)recs, (unsigned long long)rx_end_at,
                         (unsigned long long)rx.k);
                rx_state = 2;
            }
            continue;
        }
        if (rx.pos < 8) {
            rx_hdr |= (uint64_t)c << 8 * rx.pos;
            if (rx.pos < 7) {
                advance(&rx, 1);
                continue;
            }
            uint64_t want = data_hdr(rx.k, rx.len);
            if (rx_hdr == end_hdr(rx.k)) {
                rx_state = 1;
                rx_end_at = rx.bytes - 7;
                rx.bytes += 1;
                rx.pos = 0;
                rx_hdr = 0;
                continue;
            }
            if (rx_hdr != want)
                FAIL("from %s: header of record %llu at stream offset %llu: expected %016llx (or END %016llx), got %016llx",
                     peer_name, (unsigned long long)rx.k, (unsigned long long)(rx.bytes - 7), (unsigned long long)want,
                     (unsigned long long)end_hdr(rx.k), (unsigned long long)rx_hdr);
            rx_hdr = 0;
            advance(&rx, 1);
            continue;
        }
        /* payload: the common case, checked in a tight loop to the record's end or the buffer's */
        size_t m = 8 + rx.len - rx.pos;
        if (m > n - i)
            m = n - i;
        for (size_t j = 0; j < m; j++) {
            uint8_t want = payload_byte(&rx, rx.payload + j);
            if (b[i + j] != want)
                FAIL("from %s: stream offset %llu (record %llu, payload byte %llu of %u, payload offset %llu): expected 0x%02x, got 0x%02x",
                     peer_name, (unsigned long long)(rx.bytes + j), (unsigned long long)rx.k,
                     (unsigned long long)(rx.pos - 8 + j), rx.len, (unsigned long long)(rx.payload + j), want, b[i + j]);
        }
        advance(&rx, (uint32_t)m);
        i += m - 1;
        received += m - 1;
    }
}

/* ---- options, names, state ---- */
struct opt { int level, name; const char *label; int set, value; int ref; };
static struct opt server_opts[] = {
    { SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 1, 96 * 1024, 0 },
    { SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 1, 72 * 1024, 0 },
    { IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 1, 1, 0 },
    { SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 0, 0, 0 },
    { IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", 0, 0, 0 },
    { IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", 0, 0, 0 },
    { IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 0, 0, 0 },
};
static struct opt client_opts[] = {
    { SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 1, 80 * 1024, 0 },
    { SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 1, 104 * 1024, 0 },
    { IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 0, 0, 0 },
    { SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1, 1, 0 },
    { IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", 1, 47, 0 },
    { IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", 1, 9, 0 },
    { IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 1, 4, 0 },
};
#define NOPTS 7
static struct opt *opts;

static int getopt_int(int fd, const struct opt *o)
{
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, o->level, o->name, &v, &l) != 0 || l != sizeof v)
        FAIL("getsockopt %s: %s", o->label, strerror(errno));
    return v;
}
/* Sets the options of this side on fd and takes what the kernel reports as the reference. */
static void set_options(int fd)
{
    for (int i = 0; i < NOPTS; i++) {
        struct opt *o = &opts[i];
        if (o->set && setsockopt(fd, o->level, o->name, &o->value, sizeof o->value) != 0)
            FAIL("setsockopt %s %d: %s", o->label, o->value, strerror(errno));
        o->ref = getopt_int(fd, o);
        int want = o->name == SO_RCVBUF || o->name == SO_SNDBUF ? 2 * o->value : o->value;
        if (o->set && o->ref != want)
            FAIL("%s set to %d reads back %d, expected %d", o->label, o->value, o->ref, want);
    }
}
static void check_options(int fd, const char *when)
{
    for (int i = 0; i < NOPTS; i++) {
        int v = getopt_int(fd, &opts[i]);
        if (v != opts[i].ref)
            FAIL("%s: %s is %d, expected %d", when, opts[i].label, v, opts[i].ref);
    }
}

static struct sockaddr_storage self0, peer0;
static socklen_t self0_len, peer0_len;

static const char *fmt_addr(const struct sockaddr_storage *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
        port = ntohs(v4->sin_port);
        snprintf(buf, size, "%s:%d", ip, port);
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
        port = ntohs(v6->sin6_port);
        snprintf(buf, size, "[%s]:%d", ip, port);
    } else
        snprintf(buf, size, "family-%d", a->ss_family);
    return buf;
}

static struct in_addr addr4 = { .s_addr = 0 };

/* The address of the mode: 127.0.0.1 (or --addr's), ::1 or ::ffff:127.0.0.1, with port. */
static socklen_t mode_addr(struct sockaddr_storage *a, int port)
{
    memset(a, 0, sizeof *a);
    if (fam == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)a;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        v4->sin_addr = addr4;
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, mapped ? "::ffff:127.0.0.1" : "::1", &v6->sin6_addr);
    return sizeof *v6;
}
static int port_of(const struct sockaddr_storage *a)
{
    return ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                         : ((const struct sockaddr_in6 *)a)->sin6_port);
}
/* Same family, address and port (flowinfo and scope id of loopback are 0 anyway). */
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || port_of(a) != port_of(b))
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static void names(int fd, struct sockaddr_storage *self, socklen_t *sl, struct sockaddr_storage *peer, socklen_t *pl)
{
    *sl = *pl = sizeof *self;
    if (getsockname(fd, (struct sockaddr *)self, sl) != 0)
        FAIL("getsockname: %s", strerror(errno));
    if (getpeername(fd, (struct sockaddr *)peer, pl) != 0)
        FAIL("getpeername: %s", strerror(errno));
}

/* Takes the connection's names as the reference and checks they are of the mode. */
static void first_names(int fd, int port)
{
    names(fd, &self0, &self0_len, &peer0, &peer0_len);
    struct sockaddr_storage want;
    mode_addr(&want, is_server ? port_of(&peer0) : port);
    char a[80], b[80];
    /* With --addr the client's end has an address of its own network's: only the server's is known. */
    int other_end = addr4.s_addr != htonl(INADDR_LOOPBACK);
    if (!(other_end && is_server) && !same_addr(&peer0, &want))
        FAIL("peer is %s, expected %s", fmt_addr(&peer0, a, sizeof a), fmt_addr(&want, b, sizeof b));
    mode_addr(&want, is_server ? port : port_of(&self0));
    if (!(other_end && !is_server) && !same_addr(&self0, &want))
        FAIL("local name is %s, expected %s", fmt_addr(&self0, a, sizeof a), fmt_addr(&want, b, sizeof b));
    say("CONN %s local %s peer %s", fam == AF_INET ? "inet" : mapped ? "inet6-mapped" : "inet6",
        fmt_addr(&self0, a, sizeof a), fmt_addr(&peer0, b, sizeof b));
}

static void check_socket(int fd, const char *when)
{
    check_options(fd, when);
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) != 0 || v != SOCK_STREAM)
        FAIL("%s: SO_TYPE %d, expected SOCK_STREAM", when, v);
    l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) != 0 || v != fam)
        FAIL("%s: SO_DOMAIN %d, expected %d", when, v, fam);
    int fl = fcntl(fd, F_GETFL);
    if (fl != (O_RDWR | O_NONBLOCK))
        FAIL("%s: F_GETFL %#x, expected %#x", when, fl, O_RDWR | O_NONBLOCK);
    struct sockaddr_storage self, peer;
    socklen_t sl, pl;
    names(fd, &self, &sl, &peer, &pl);
    char a[80], b[80];
    if (sl != self0_len || !same_addr(&self, &self0))
        FAIL("%s: local name %s, expected %s", when, fmt_addr(&self, a, sizeof a), fmt_addr(&self0, b, sizeof b));
    if (pl != peer0_len || !same_addr(&peer, &peer0))
        FAIL("%s: peer %s, expected %s", when, fmt_addr(&peer, a, sizeof a), fmt_addr(&peer0, b, sizeof b));
    struct tcp_info ti;
    l = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0)
        FAIL("%s: TCP_INFO: %s", when, strerror(errno));
    /* The peer's FIN follows its END at once: the kernel can have it (CLOSE_WAIT) while bytes
     * before the END still wait to be read. (Only called before this side's own shutdown.) */
    if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT)
        FAIL("%s: TCP state %d, expected ESTABLISHED or CLOSE_WAIT", when, ti.tcpi_state);
}

/* ---- the loop ---- */
static char stop_path[3100];
static unsigned long pass_ticks;

static void run(int fd)
{
    signal(SIGPIPE, SIG_IGN);
    stream_init(&tx, is_server ? SEED_S2C : SEED_C2S);
    stream_init(&rx, is_server ? SEED_C2S : SEED_S2C);
    check_socket(fd, "start");
    char line[400];
    size_t used = 0;
    for (int i = 0; i < NOPTS; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, " %s=%d", opts[i].label, opts[i].ref);
    say("OPTS%s", line);
    const uint64_t pause_at = is_server ? 300 : 1300;
    uint64_t t0 = vclock(), next_tick = t0 + 20, end_start = 0;
    unsigned long ticks = 0;
    int ending = 0;
    uint64_t budget = 0, budget_t = t0;   /* bytes this side may read now */
    for (;;) {
        uint64_t now = vclock();
        if (!ending && now >= next_tick) {
            if (access(stop_path, F_OK) == 0 || rx_state != 0) {
                check_socket(fd, "at the end");
                ending = 1;
                end_start = now;
            } else {
                if (errno != ENOENT)
                    FAIL("access(%s): %s", stop_path, strerror(errno));
                check_socket(fd, "tick");
                ticks++;
                if (ticks % 5 == 0)
                    say("tick %lu sent %llu received %llu", ticks, (unsigned long long)tx.bytes, (unsigned long long)received);
                next_tick += 20;
                if (next_tick <= now)
                    next_tick = now + 20;
            }
        }
        if (ending) {
            if (end_sent && rx_eof)
                break;
            if (now - end_start > END_LIMIT_MS)
                FAIL("no clean end within %d s: END %s, %s's END %s, its end of file %s (sent %llu, received %llu)",
                     END_LIMIT_MS / 1000, end_sent ? "sent" : "not sent", peer_name,
                     rx_state == 2 ? "received" : "not received", rx_eof ? "received" : "not received",
                     (unsigned long long)tx.bytes, (unsigned long long)received);
        }
        uint64_t phase = (now - t0 + PERIOD_MS - pause_at) % PERIOD_MS;
        if (ending || phase >= SLOW_UNTIL_MS)
            budget = UINT64_MAX;
        else if (phase < PAUSE_MS)
            budget = 0;
        else {
            budget = budget > CHUNK ? CHUNK : budget + (now - budget_t) * SLOW_BYTES_PER_MS;
            if (budget > CHUNK)
                budget = CHUNK;
        }
        budget_t = now;

        if (out_head == out_tail && !end_queued)
            generate(ending);
        if (out_head == out_tail && end_queued && !shut_done) {
            if (shutdown(fd, SHUT_WR) != 0)
                FAIL("shutdown(SHUT_WR): %s", strerror(errno));
            shut_done = end_sent = 1;
        }
        struct pollfd p = { .fd = fd, .events = (short)((budget == 0 || rx_eof ? 0 : POLLIN) | (out_head < out_tail ? POLLOUT : 0)) };
        int timeout = ending ? 20 : next_tick > now ? (int)(next_tick - now) : 0;
        if (timeout > 20)
            timeout = 20;
        if (budget == 0 && phase >= PAUSE_MS)
            timeout = 1;                /* throttled: the budget grows every millisecond */
        int r = poll(&p, 1, timeout);
        if (r < 0 && errno != EINTR)
            FAIL("poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        if (p.revents & POLLERR) {
            int e = 0;
            socklen_t l = sizeof e;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
            FAIL("socket error %s (sent %llu, received %llu)", strerror(e), (unsigned long long)tx.bytes,
                 (unsigned long long)received);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            for (int reads = 0; reads < 4 && !rx_eof && budget > 0; reads++) {
                ssize_t n = recv(fd, in, budget < sizeof in ? budget : sizeof in, 0);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        break;
                    FAIL("recv at stream offset %llu: %s", (unsigned long long)received, strerror(errno));
                }
                if (n == 0) {
                    if (rx_state != 2)
                        FAIL("end of file from %s at stream offset %llu, before its END", peer_name, (unsigned long long)received);
                    rx_eof = 1;
                    break;
                }
                take(in, (size_t)n);
                if (budget != UINT64_MAX)
                    budget -= (uint64_t)n;
            }
        }
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, out + out_head, out_tail - out_head, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    FAIL("send at stream offset %llu: %s", (unsigned long long)(tx.bytes - (out_tail - out_head)), strerror(errno));
            } else
                out_head += (size_t)n;
        }
    }
    check_options(fd, "after the end");   /* names: gone once both sides are shut down (TIME_WAIT) */
    pass_ticks = ticks;
}
static void pass(void)
{
    say("PASS %lu sent %llu received %llu", pass_ticks, (unsigned long long)tx.bytes, (unsigned long long)received);
}

/* ---- setup ---- */
static void path_of(char *o, size_t size, const char *name) { snprintf(o, size, "%s/%s", wd, name); }

static void own_log(const char *name)
{
    char p[3100];
    path_of(p, sizeof p, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(3);
    close(fd);
}

static int make_socket(void)
{
    int s = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        FAIL("socket: %s", strerror(errno));
    if (fam == AF_INET6) {
        int v6only = !mapped;
        if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0)
            FAIL("IPV6_V6ONLY: %s", strerror(errno));
    }
    return s;
}

static int listen_and_publish(void)
{
    int l = make_socket();
    set_options(l);
    struct sockaddr_storage a;
    socklen_t alen = mode_addr(&a, 0);
    if (bind(l, (struct sockaddr *)&a, alen) != 0 || listen(l, 1) != 0)
        FAIL("bind/listen: %s", strerror(errno));
    alen = sizeof a;
    if (getsockname(l, (struct sockaddr *)&a, &alen) != 0)
        FAIL("getsockname: %s", strerror(errno));
    char tmp[3100], final[3100], line[16];
    path_of(tmp, sizeof tmp, "port.tmp");
    path_of(final, sizeof final, "port");
    int len = snprintf(line, sizeof line, "%d\n", port_of(&a));
    int f = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f < 0 || write(f, line, len) != len || close(f) != 0 || rename(tmp, final) != 0)
        FAIL("writing %s: %s", final, strerror(errno));
    return l;
}

static int server(int listener)
{
    int port = 0;
    struct sockaddr_storage a;
    socklen_t alen = sizeof a;
    if (getsockname(listener, (struct sockaddr *)&a, &alen) != 0)
        FAIL("getsockname: %s", strerror(errno));
    port = port_of(&a);
    int fd;
    while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
        if (errno != EINTR)
            FAIL("accept: %s", strerror(errno));
    close(listener);
    first_names(fd, port);
    run(fd);
    return 0;   /* PASS printed by the caller */
}

static int client(void)
{
    char pp[3100], buf[16] = { 0 };
    path_of(pp, sizeof pp, "port");
    int f = -1;
    for (int tries = 0; (f = open(pp, O_RDONLY | O_CLOEXEC)) < 0; tries++) {
        if (errno != ENOENT || tries >= 500)
            FAIL("open(%s): %s", pp, strerror(errno));
        tick_sleep();
    }
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    int port = n > 0 ? atoi(buf) : 0;
    if (port <= 0 || port > 65535)
        FAIL("bad port file %s: '%s'", pp, buf);
    int s = make_socket();
    set_options(s);
    struct sockaddr_storage a;
    socklen_t alen = mode_addr(&a, port);
    while (connect(s, (struct sockaddr *)&a, alen) != 0)
        if (errno != EINTR)
            FAIL("connect to port %d: %s", port, strerror(errno));
    if (fcntl(s, F_SETFL, O_NONBLOCK) != 0)
        FAIL("O_NONBLOCK: %s", strerror(errno));
    first_names(s, port);
    say("READY");
    run(s);
    pass();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        FAIL("usage: tcpstream server|client|both WORKDIR [--v6|--mapped]");
    snprintf(wd, sizeof wd, "%s", argv[2]);
    path_of(stop_path, sizeof stop_path, "stop");
    fam = AF_INET;
    addr4.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--v6") == 0)
            fam = AF_INET6;
        else if (strcmp(argv[i], "--mapped") == 0)
            fam = AF_INET6, mapped = 1;
        else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc) {
            if (inet_pton(AF_INET, argv[++i], &addr4) != 1)
                FAIL("--addr %s is not an IPv4 address", argv[i]);
        } else
            FAIL("unknown option %s", argv[i]);
    }
    const char *mode = argv[1];
    if (strcmp(mode, "client") == 0) {
        own_log("client.log");
        opts = client_opts;
        peer_name = "server";
        return client();
    }
    if (strcmp(mode, "server") != 0 && strcmp(mode, "both") != 0)
        FAIL("usage: tcpstream server|client|both WORKDIR [--v6|--mapped]");
    own_log("server.log");
    is_server = 1;
    opts = server_opts;
    peer_name = "client";
    int listener = listen_and_publish();
    say("READY");
    if (strcmp(mode, "server") == 0) {
        server(listener);
        pass();
        return 0;
    }
    pid_t child = fork();
    if (child < 0)
        FAIL("fork: %s", strerror(errno));
    if (child == 0) {
        close(listener);
        own_log("client.log");
        is_server = 0;
        opts = client_opts;
        peer_name = "server";
        return client();
    }
    say("CHILD %d", (int)child);
    server(listener);
    int status;
    while (waitpid(child, &status, 0) != child)
        if (errno != EINTR)
            FAIL("waitpid(client %d): %s", (int)child, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("client %d ended with status %#x", (int)child, status);
    pass();
    return 0;
}
