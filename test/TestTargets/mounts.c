/* mounts: a program in a mount namespace of its own (unshare --mount --pid --fork --mount-proc),
 * started by a shell that made, below WORKDIR: a tmpfs on t holding greeting ("hello from tmpfs"),
 * a directory d and a symbolic link link -> greeting; and a bind mount of src on b.
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 * Every tick it checks that t is a tmpfs with those files, that b is src (same device and inode), that
 * /proc is its PID namespace's (the pid in /proc/self/stat is getpid()), and appends a line to
 * t/log through an fd it keeps open (which must still be t/log); at the end t/log has every line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "target.h"

#define TMPFS_MAGIC 0x01021994

static char wd[3800];

static const char *at(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", wd, name);
    return path;
}

static void check(int log)
{
    struct statfs fs;
    if (statfs(at("t"), &fs) != 0 || fs.f_type != TMPFS_MAGIC)
        FAIL("%s is not a tmpfs (%s)", at("t"), strerror(errno));
    char text[64] = { 0 };
    int fd = open(at("t/greeting"), O_RDONLY);
    if (fd < 0 || read(fd, text, sizeof text - 1) < 0 || strcmp(text, "hello from tmpfs\n") != 0)
        FAIL("t/greeting holds '%s' (%s)", text, strerror(errno));
    close(fd);
    char link[64] = { 0 };
    if (readlink(at("t/link"), link, sizeof link - 1) < 0 || strcmp(link, "greeting") != 0)
        FAIL("t/link is '%s'", link);
    struct stat d, b, src, open_log, path_log;
    if (stat(at("t/d"), &d) != 0 || !S_ISDIR(d.st_mode) || (d.st_mode & 07777) != 0700)
        FAIL("t/d is not a directory of mode 0700 (0%o)", d.st_mode & 07777);
    if (stat(at("b"), &b) != 0 || stat(at("src"), &src) != 0 || b.st_dev != src.st_dev || b.st_ino != src.st_ino)
        FAIL("b is not a bind mount of src");
    FILE *self = fopen("/proc/self/stat", "r");
    int pid = 0;
    if (self == NULL || fscanf(self, "%d", &pid) != 1 || pid != getpid())
        FAIL("/proc/self/stat says %d, getpid() %d: /proc is not this PID namespace's", pid, getpid());
    fclose(self);
    if (fstat(log, &open_log) != 0 || stat(at("t/log"), &path_log) != 0 || open_log.st_ino != path_log.st_ino || open_log.st_dev != path_log.st_dev)
        FAIL("the fd on t/log is no longer t/log");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: mounts WORKDIR");
    snprintf(wd, sizeof wd, "%s", argv[1]);
    int log = open(at("t/log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0)
        FAIL("open t/log: %s", strerror(errno));
    check(log);
    say("READY");
    for (long n = 1;; n++) {
        check(log);
        if (dprintf(log, "%ld\n", n) < 0)
            FAIL("write t/log: %s", strerror(errno));
        say("tick %ld", n);
        if (access(at("stop"), F_OK) == 0) {
            FILE *f = fopen(at("t/log"), "r");
            long line = 0, expect = 1;
            while (f != NULL && fscanf(f, "%ld", &line) == 1) {
                if (line != expect)
                    FAIL("t/log has %ld where %ld was written", line, expect);
                expect++;
            }
            if (expect != n + 1)
                FAIL("t/log has %ld lines, %ld were written", expect - 1, n);
            say("PASS");
            return 0;
        }
        tick_sleep();
    }
}
