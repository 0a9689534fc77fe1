/* procself.c - checkpoint/restore target: a file descriptor open on the
 * process's own /proc/self/maps (which the kernel names /proc/<pid>/maps),
 * kept at offset 5, like a program that keeps a /proc file of its own open.
 *
 * usage: procself <workdir>
 * Protocol: READY, then every ~20 ms "tick <n>". Each tick checks that the fd
 * is still at offset 5, still names this process's maps, and that reading it
 * (pread at 0, which leaves the offset alone) gives a maps line. If
 * <workdir>/stop exists: "PASS <n>", exit 0. Any mismatch: "FAIL ...", exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "target.h"

static int maps = -1;
static char stop_path[4096];

static void check(void)
{
    off_t at = lseek(maps, 0, SEEK_CUR);
    if (at != 5) FAIL("/proc/self/maps fd at offset %ld, expected 5", (long)at);
    char link[64], want[64], got[64] = { 0 };
    snprintf(link, sizeof link, "/proc/self/fd/%d", maps);
    snprintf(want, sizeof want, "/proc/%d/maps", (int)getpid());
    if (readlink(link, got, sizeof got - 1) < 0) FAIL("readlink %s: %s", link, strerror(errno));
    if (strcmp(got, want) != 0) FAIL("the maps fd names %s, expected %s", got, want);
    char line[32];
    ssize_t n = pread(maps, line, sizeof line, 0);
    if (n < 9) FAIL("pread of /proc/self/maps returned %zd: %s", n, n < 0 ? strerror(errno) : "short");
    for (int i = 0; i < 8; i++)
        if (!strchr("0123456789abcdef", line[i])) FAIL("/proc/self/maps begins with '%.16s', not an address", line);
}

int main(int argc, char **argv)
{
    if (argc < 2) FAIL("usage: procself <workdir>");
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps < 0) FAIL("open /proc/self/maps: %s", strerror(errno));
    if (lseek(maps, 5, SEEK_SET) != 5) FAIL("lseek /proc/self/maps: %s", strerror(errno));
    check();
    say("READY");
    for (long n = 1;; n++) {
        struct stat st;
        if (stat(stop_path, &st) == 0) {
            check();
            say("PASS %ld", n - 1);
            return 0;
        }
        check();
        say("tick %ld", n);
        tick_sleep();
    }
}
