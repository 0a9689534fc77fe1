/* piperead.c - checkpoint/restore target: process blocked in read(0) on a pipe.
 *
 * usage: piperead <workdir>      (workdir unused; kept for a uniform command line)
 * stdin must be a pipe fed by the test with lines "seq <k>\n", k = 1,2,3,...
 * (any number of lines per write, lines may be split across writes), then
 * "stop\n". Prints READY, then "got <k>" per line, "PASS <last k>" on stop.
 * No timer and no stop file: the process spends its life blocked in read(),
 * which is exactly where a checkpoint will find it. After restore the pipe
 * must be readable again with no bytes lost, duplicated or reordered, and no
 * spurious EOF/EINTR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "target.h"

static char buf[1 << 16];   /* holds at most one partial line between reads */
static size_t len;
static unsigned long last; /* last k seen */

/* Handle one complete line (without its '\n'). Returns 1 on "stop". */
static int line(char *s, size_t n) {
    s[n] = 0;
    if (strcmp(s, "stop") == 0) return 1;
    if (n < 5 || strncmp(s, "seq ", 4) != 0 || s[4] < '0' || s[4] > '9')
        FAIL("unexpected line \"%.60s\" after %lu", s, last);
    char *end;
    errno = 0;
    unsigned long k = strtoul(s + 4, &end, 10);
    if (errno || *end) FAIL("bad number in line \"%.60s\" after %lu", s, last);
    if (k != last + 1) FAIL("sequence: expected %lu got %lu", last + 1, k);
    last = k;
    say("got %lu", k);
    return 0;
}

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    struct stat st;
    if (fstat(0, &st) < 0) FAIL("fstat(stdin): %s", strerror(errno));
    if (!S_ISFIFO(st.st_mode)) FAIL("stdin is not a pipe (mode %o)", (unsigned)st.st_mode);
    say("READY");
    for (;;) {
        if (len >= sizeof buf - 1) FAIL("line longer than %zu bytes after %lu", sizeof buf, last);
        ssize_t r = read(0, buf + len, sizeof buf - 1 - len);  /* blocks here */
        if (r < 0) FAIL("read(0) after %lu: errno %d (%s)", last, errno, strerror(errno));
        if (r == 0) FAIL("eof after %lu", last);
        size_t end = len + r, start = 0;
        for (size_t i = len; i < end; i++) {
            if (buf[i] != '\n') continue;
            if (line(buf + start, i - start)) {
                say("PASS %lu", last);
                exit(0);
            }
            start = i + 1;
        }
        memmove(buf, buf + start, end - start);     /* keep the partial line */
        len = end - start;
    }
}
