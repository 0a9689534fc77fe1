/* pipeline: a pipe between two children of main that main itself no longer holds — what a shell
 * builds for `a | b`. argv[1] = workdir. Protocol as in README.md (main prints the ticks).
 *   writer: every tick writes a burst of "seq <k>\n" lines; the reader takes one line a tick, so
 *           bytes are always queued in the pipe (in flight at any checkpoint);
 *   reader: checks every k follows the previous one.
 * On the stop file the writer closes its end; the reader drains the pipe to EOF, checks, and both
 * exit 0; main checks their exit statuses and prints PASS.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include "target.h"

static char stop[4096], written[4096];

static void writer(int out)
{
    long k = 0;
    while (access(stop, F_OK) != 0) {
        char burst[256];
        int len = 0;
        for (int i = 0; i < 3; i++)
            len += snprintf(burst + len, sizeof burst - (size_t)len, "seq %ld\n", ++k);
        if (write(out, burst, (size_t)len) != len)
            FAIL("writer: %s", strerror(errno));
        tick_sleep();
    }
    /* tell the reader how many lines there were, then close: EOF for it */
    FILE *f = fopen(written, "w");
    if (!f || fprintf(f, "%ld\n", k) < 0 || fclose(f) != 0)
        FAIL("writer: cannot record its count");
    close(out);
    _exit(0);
}

static void reader(int in)
{
    FILE *f = fdopen(in, "r");
    long expect = 1;
    char line[64];
    for (;;) {
        if (!fgets(line, sizeof line, f)) {
            /* EOF: only once the writer is done, and after every line it wrote */
            long total = -1;
            FILE *w = fopen(written, "r");
            if (!w || fscanf(w, "%ld", &total) != 1)
                FAIL("reader: end of the pipe before the writer finished (after seq %ld)", expect - 1);
            fclose(w);
            if (total != expect - 1)
                FAIL("reader: read %ld lines, the writer wrote %ld", expect - 1, total);
            break;
        }
        long k;
        if (sscanf(line, "seq %ld", &k) != 1 || k != expect)
            FAIL("reader: got '%s', expected seq %ld", line, expect);
        expect++;
        if (access(stop, F_OK) != 0)
            tick_sleep(); /* slower than the writer: the pipe fills up */
    }
    _exit(expect > 1 ? 0 : 2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: pipeline WORKDIR");
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    snprintf(written, sizeof written, "%s/written", argv[1]);
    int p[2];
    if (pipe(p) != 0)
        FAIL("pipe: %s", strerror(errno));
    pid_t w = fork();
    if (w == 0) {
        close(p[0]);
        writer(p[1]);
    }
    pid_t r = fork();
    if (r == 0) {
        close(p[1]);
        reader(p[0]);
    }
    close(p[0]);
    close(p[1]);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            int st;
            if (waitpid(w, &st, 0) != w || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("writer ended with status 0x%x", st);
            if (waitpid(r, &st, 0) != r || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("reader ended with status 0x%x", st);
            say("PASS %ld", n - 1);
            return 0;
        }
        say("tick %ld", n);
        tick_sleep();
    }
}
