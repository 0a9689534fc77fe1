/* fdshare: pipes inside the process with bytes in flight, and dup'ed fds sharing one offset.
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 *  - pipe A (read end O_NONBLOCK): every tick writes "seq <k>\n" and reads back the line written
 *    10 ticks before, so ~10 lines are always queued in the pipe.
 *  - pipe B: capacity raised to 256 KiB and 100000 bytes of a pattern written once, left queued
 *    until the final check reads them all.
 *  - data.txt opened once and dup'ed: ticks write through the two fds in turn; one shared offset
 *    means the file holds "<n>\n" lines 1..n with no gap or overlap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "target.h"

static int a[2], b[2], data1, data2;
static long next_read = 1;
static const size_t b_bytes = 100000;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + 13); }

static void read_line_a(void)
{
    char want[64], got[64];
    int len = snprintf(want, sizeof want, "seq %ld\n", next_read);
    ssize_t n = read(a[0], got, (size_t)len);
    if (n != len || memcmp(want, got, (size_t)len) != 0)
        FAIL("pipe A: expected '%.*s' (%d bytes), read %zd bytes", len - 1, want, len, n);
    next_read++;
}

static void check_data(long n)
{
    off_t off1 = lseek(data1, 0, SEEK_CUR), off2 = lseek(data2, 0, SEEK_CUR);
    if (off1 != off2)
        FAIL("dup'ed fds have offsets %ld and %ld, expected one shared offset", (long)off1, (long)off2);
    char path[4200];
    static char buf[1 << 20];
    snprintf(path, sizeof path, "/proc/self/fd/%d", data1);
    int fd = open(path, O_RDONLY);
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len != off1)
        FAIL("data.txt is %zd bytes, shared offset is %ld", len, (long)off1);
    buf[len] = 0;
    long expect = 1;
    for (char *p = buf; *p; expect++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (v != expect || *end != '\n')
            FAIL("data.txt line %ld is %ld", expect, v);
        p = end + 1;
    }
    if (expect - 1 != n)
        FAIL("data.txt has %ld lines, expected %ld", expect - 1, n);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: fdshare WORKDIR");
    char path[4096], stop[4096];
    snprintf(path, sizeof path, "%s/data.txt", argv[1]);
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    if (pipe(a) || pipe(b))
        FAIL("pipe: %s", strerror(errno));
    if (fcntl(a[0], F_SETFL, O_NONBLOCK) < 0)
        FAIL("F_SETFL: %s", strerror(errno));
    if (fcntl(b[1], F_SETPIPE_SZ, 256 * 1024) < 262144)
        FAIL("F_SETPIPE_SZ: %s", strerror(errno));
    static unsigned char chunk[100000];
    for (size_t i = 0; i < b_bytes; i++)
        chunk[i] = pattern(i);
    if (write(b[1], chunk, b_bytes) != (ssize_t)b_bytes)
        FAIL("write pipe B: %s", strerror(errno));
    data1 = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    data2 = dup(data1);
    if (data1 < 0 || data2 < 0)
        FAIL("open data.txt: %s", strerror(errno));
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check_data(n - 1);
            if (fcntl(a[0], F_GETFL) != (O_RDONLY | O_NONBLOCK))
                FAIL("pipe A read end flags 0%o", fcntl(a[0], F_GETFL));
            while (next_read < n)
                read_line_a();
            char extra;
            if (read(a[0], &extra, 1) != -1 || errno != EAGAIN)
                FAIL("pipe A holds more than it should");
            if (fcntl(b[0], F_GETPIPE_SZ) != 262144)
                FAIL("pipe B capacity %d", fcntl(b[0], F_GETPIPE_SZ));
            static unsigned char got[100000];
            size_t have = 0;
            while (have < b_bytes) {
                ssize_t r = read(b[0], got + have, b_bytes - have);
                if (r <= 0)
                    FAIL("pipe B: read %zd after %zu bytes", r, have);
                have += (size_t)r;
            }
            for (size_t i = 0; i < b_bytes; i++)
                if (got[i] != pattern(i))
                    FAIL("pipe B byte %zu is %d", i, got[i]);
            say("PASS %ld", n - 1);
            return 0;
        }
        char line[64];
        int len = snprintf(line, sizeof line, "seq %ld\n", n);
        if (write(a[1], line, (size_t)len) != len)
            FAIL("write pipe A: %s", strerror(errno));
        if (n > 10)
            read_line_a();
        len = snprintf(line, sizeof line, "%ld\n", n);
        if (write(n % 2 ? data1 : data2, line, (size_t)len) != len)
            FAIL("write data.txt: %s", strerror(errno));
        check_data(n);
        say("tick %ld", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
}
