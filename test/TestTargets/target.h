/* target.h - output and timing helpers shared by the checkpoint/restore test
 * targets (counter, piperead, signals, guards, blocker, fdshare, limits).
 *
 * Include it with #include "target.h" after the program's own system headers
 * (and after #define _GNU_SOURCE). gcc finds it next to the .c file, so every
 * target still builds with a plain `gcc -O1 -g -Wall -o X X.c`. Everything
 * here is static: each target stays one translation unit with nothing extra
 * to link. Not every target uses every helper, hence __attribute__((unused)).
 */
#ifndef AMBER_TARGET_H
#define AMBER_TARGET_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Size of say()'s line buffer: a line is cut to TARGET_LINE_MAX - 2 characters
 * plus its '\n'. A target that prints longer lines defines it before the
 * #include (guards.c: 1024, for whole /proc/self/maps lines in its FAILs). */
#ifndef TARGET_LINE_MAX
#define TARGET_LINE_MAX 512
#endif

/* say(fmt, ...): printf-style; prints the text plus a '\n' (added here, so fmt
 * has none) as ONE write(2) to fd 1. Never stdio, and never two writes for one
 * line, because:
 *  - The test reads the log (stdout and stderr, O_APPEND) while the program
 *    runs and acts on each complete line. One write(2) per line means a line
 *    appears whole or not at all; it is never split or mixed with another.
 *  - A stdio buffer lives in process memory, so a checkpoint would copy any
 *    bytes still waiting in it: the restored process would print them again,
 *    or they would be lost when the original is killed. After write(2)
 *    returns, the line is in the log and nothing of it is left in memory.
 * If stdout is broken (the write fails or is short), _exit(3): 3 tells that
 * apart from a failed check (1), and nothing else can be reported anyway. */
__attribute__((format(printf, 1, 2), unused))
static void say(const char *fmt, ...) {
    char b[TARGET_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b - 1, fmt, ap);
    va_end(ap);
    if (n < 0) _exit(3);
    if (n > (int)sizeof b - 2) n = sizeof b - 2;
    b[n++] = '\n';                          /* one write(2) per line */
    if (write(1, b, n) != n) _exit(3);
}

/* FAIL(fmt, ...): say "FAIL <message>" and exit(1). fmt must be a string
 * literal (it is pasted after "FAIL "). Exit status 1 with a FAIL line is how
 * a target reports that its own state is wrong, i.e. a bad restore: the tests
 * stop at the first line starting with FAIL and print it. A crash (signal) or
 * 3 (stdout broken, see say) means something else. exit() rather than _exit()
 * is harmless: nothing is ever buffered in stdio. */
#define FAIL(...) do { say("FAIL " __VA_ARGS__); exit(1); } while (0)

/* tick_sleep(): the ~20 ms pause between ticks, CLOCK_MONOTONIC and relative.
 * A signal handler (SIGUSR1 in signals.c) interrupts clock_nanosleep with
 * EINTR even under SA_RESTART: sleep the remaining time. Any other error is a
 * FAIL. */
__attribute__((unused))
static void tick_sleep(void) {
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    int r;
    while ((r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts)) == EINTR) {}
    if (r) FAIL("clock_nanosleep: %s", strerror(r));
}

#endif
