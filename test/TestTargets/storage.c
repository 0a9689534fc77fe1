/* storage: a program whose files say exactly which tick it is at, for storage checkpoints.
 * argv[1] = workdir, argv[2] = its storage directory (made empty by the test). Setup: storage/log
 * (written through one fd kept open, no O_APPEND: its offset matters), storage/log.hard (a hard
 * link to it), storage/sub (mode 0750) holding sub/big, a 4 MiB sparse file. READY, then tick n:
 * appends "%08d\n" n to log, writes block n % 1024 of big (its first 8 bytes n, the rest n & 0xff),
 * creates f<n> holding "n\n" and removes f<n-3>, points the symlink "current" at f<n>; then checks
 * that the files are what ticks 1..n leave (every tick: the log, the recent blocks, f<n-2..n>, the
 * links; every 25 ticks and at the end: all of big), prints "tick <n>". The state of the files after
 * tick n depends only on n, so the test checks it too. SIGUSR1: stop (SIGSTOP) right after the next
 * "tick" line, at a moment when the files are exactly those of that tick. PASS <n> on <workdir>/stop.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "target.h"

#define BLOCK 4096
#define BLOCKS 1024

static char dir[4096];
static int logfd, bigfd;
static volatile sig_atomic_t stop_requested;

static void on_usr1(int sig) { (void)sig; stop_requested = 1; }

static const char *at(const char *name)
{
    static char path[2][4200];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof path[which], "%s/%s", dir, name);
    return path[which];
}

static void fill_block(unsigned char *b, long n)
{
    memset(b, (int)(n & 0xff), BLOCK);
    memcpy(b, &n, sizeof n);
}

/* The tick that last wrote block b by tick n, or 0 (never written: a hole). */
static long last_writer(long n, long b)
{
    long s = n - (((n - b) % BLOCKS) + BLOCKS) % BLOCKS;
    return s >= 1 ? s : 0;
}

static void check_block(long n, long b)
{
    static unsigned char got[BLOCK], want[BLOCK];
    if (pread(bigfd, got, BLOCK, b * BLOCK) != BLOCK)
        FAIL("after tick %ld: short read of big block %ld", n, b);
    long s = last_writer(n, b);
    if (s)
        fill_block(want, s);
    else
        memset(want, 0, BLOCK);
    if (memcmp(got, want, BLOCK) != 0)
        FAIL("after tick %ld: big block %ld is not that of tick %ld", n, b, s);
}

static void check(long n, int all)
{
    struct stat st, hard;
    if (fstat(logfd, &st) != 0 || st.st_size != 9 * n)
        FAIL("after tick %ld: log is %ld bytes, expected %ld", n, (long)st.st_size, 9 * n);
    off_t offset = lseek(logfd, 0, SEEK_CUR);
    if (offset != 9 * n)
        FAIL("after tick %ld: log offset %ld, expected %ld", n, (long)offset, 9 * n);
    if (stat(at("log.hard"), &hard) != 0 || hard.st_ino != st.st_ino)
        FAIL("after tick %ld: log.hard is not a link to log", n);
    char line[10], want[32];
    if (n > 0) {
        if (pread(logfd, line, 9, 9 * (n - 1)) != 9)
            FAIL("after tick %ld: cannot read the last line of log", n);
        snprintf(want, sizeof want, "%08ld\n", n);
        if (memcmp(line, want, 9) != 0)
            FAIL("after tick %ld: the last line of log is not %08ld", n, n);
    }
    if (fstat(bigfd, &st) != 0 || st.st_size != (off_t)BLOCK * BLOCKS)
        FAIL("after tick %ld: big is %ld bytes", n, (long)st.st_size);
    if (all) {
        for (long b = 0; b < BLOCKS; b++)
            check_block(n, b);
        for (long i = 1; i <= n; i++) {
            if (pread(logfd, line, 9, 9 * (i - 1)) != 9)
                FAIL("after tick %ld: cannot read line %ld of log", n, i);
            snprintf(want, sizeof want, "%08ld\n", i);
            if (memcmp(line, want, 9) != 0)
                FAIL("after tick %ld: line %ld of log is wrong", n, i);
        }
    } else {
        for (long i = n; i > n - 4 && i >= 1; i--)
            check_block(n, i % BLOCKS);
    }
    for (long i = n - 5; i <= n; i++) {
        if (i < 1)
            continue;
        char name[32], content[32];
        snprintf(name, sizeof name, "f%ld", i);
        int fd = open(at(name), O_RDONLY);
        if (i <= n - 3) {
            if (fd >= 0)
                FAIL("after tick %ld: %s should be gone", n, name);
            continue;
        }
        if (fd < 0)
            FAIL("after tick %ld: %s is missing", n, name);
        ssize_t k = read(fd, content, sizeof content - 1);
        close(fd);
        snprintf(want, sizeof want, "%ld\n", i);
        if (k != (ssize_t)strlen(want) || memcmp(content, want, k) != 0)
            FAIL("after tick %ld: %s does not hold %ld", n, name, i);
    }
    if (n > 0) {
        char target[64];
        ssize_t k = readlink(at("current"), target, sizeof target - 1);
        snprintf(want, sizeof want, "f%ld", n);
        if (k < 0 || (target[k] = 0, strcmp(target, want) != 0))
            FAIL("after tick %ld: current does not point at %s", n, want);
    }
}

static void tick(long n)
{
    char line[32], name[32];
    snprintf(line, sizeof line, "%08ld\n", n);
    if (write(logfd, line, 9) != 9)
        FAIL("tick %ld: cannot write log", n);
    static unsigned char block[BLOCK];
    fill_block(block, n);
    if (pwrite(bigfd, block, BLOCK, (n % BLOCKS) * BLOCK) != BLOCK)
        FAIL("tick %ld: cannot write big", n);
    snprintf(name, sizeof name, "f%ld", n);
    int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    snprintf(line, sizeof line, "%ld\n", n);
    if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) || close(fd) != 0)
        FAIL("tick %ld: cannot write %s", n, name);
    if (n > 3) {
        snprintf(name, sizeof name, "f%ld", n - 3);
        if (unlink(at(name)) != 0)
            FAIL("tick %ld: cannot remove %s", n, name);
    }
    unlink(at("current"));
    snprintf(name, sizeof name, "f%ld", n);
    if (symlink(name, at("current")) != 0)
        FAIL("tick %ld: cannot link current", n);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        FAIL("usage: storage WORKDIR STORAGEDIR");
    snprintf(dir, sizeof dir, "%s", argv[2]);
    logfd = open(at("log"), O_RDWR | O_CREAT | O_TRUNC, 0640);
    if (logfd < 0 || link(at("log"), at("log.hard")) != 0)
        FAIL("cannot create log and log.hard in %s", dir);
    if (mkdir(at("sub"), 0750) != 0 || chmod(at("sub"), 0750) != 0)
        FAIL("cannot create sub");
    bigfd = open(at("sub/big"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (bigfd < 0 || ftruncate(bigfd, (off_t)BLOCK * BLOCKS) != 0)
        FAIL("cannot create sub/big");
    signal(SIGUSR1, on_usr1);
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check(n - 1, 1);
            say("PASS %ld", n - 1);
            return 0;
        }
        tick(n);
        check(n, n % 25 == 0);
        say("tick %ld", n);
        if (stop_requested) {
            stop_requested = 0;
            raise(SIGSTOP);
        }
        tick_sleep();
    }
}
