/* fsuid: filesystem credentials that differ from the effective ones, and differ between threads
 * (Linux credentials are per thread; glibc's setfsuid/setfsgid change the calling thread only).
 * argv[1] = workdir (every directory above it must be searchable by others). Protocol as in
 * README.md. Started as root: makes <wd> mode 0777; the main thread sets fsuid 1234 and fsgid 2345,
 * then starts a second thread that sets fsuid 3456 and fsgid 4567. Real, effective and saved ids
 * stay 0. Changing the fsuid makes the process non-dumpable and takes the filesystem capabilities
 * out of the thread's effective set; both are kept as at setup too.
 * Each tick, in each thread (the second on request from the main one, over a pipe): setfsuid(-1) and
 * setfsgid(-1) (which change nothing and return the current value) give its fsuid/fsgid;
 * getresuid/getresgid are all 0; /proc/thread-self/status has "Uid: 0 0 0 <fsuid>" and
 * "Gid: 0 0 0 <fsgid>" and its setup CapEff; a file the thread creates in <wd> belongs to its
 * fsuid:fsgid (then removed); PR_GET_DUMPABLE is what it was at setup.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include "target.h"

struct creds { const char *name; uid_t fsuid; gid_t fsgid; char capeff[64]; };
static struct creds main_creds = { "main", 1234, 2345, "" }, second_creds = { "second", 3456, 4567, "" };
static const char *wd;
static int req[2], ans[2], dumpable0;

/* copies the value of "<key>:" in /proc/thread-self/status (tabs and all) into out */
static void status_line(const char *key, char *out, size_t size)
{
    char buf[4096];
    int f = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
    ssize_t len = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (len < 0)
        FAIL("reading /proc/thread-self/status: %s", strerror(errno));
    close(f);
    buf[len] = 0;
    char k[32];
    snprintf(k, sizeof k, "\n%s:", key);
    char *p = strstr(buf, k);
    if (!p)
        FAIL("/proc/thread-self/status has no %s line", key);
    p += strlen(k);
    size_t n = strcspn(p, "\n");
    snprintf(out, size, "%.*s", (int)n, p);
}

static void check(struct creds *c, long n)
{
    int u = setfsuid((uid_t)-1), g = setfsgid((gid_t)-1);
    if (u != (int)c->fsuid || g != (int)c->fsgid)
        FAIL("%s thread, tick %ld: fsuid %d fsgid %d, expected %u %u", c->name, n, u, g, c->fsuid, c->fsgid);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) || getresgid(&gr, &ge, &gs) || r || e || s || gr || ge || gs)
        FAIL("%s thread, tick %ld: uids %u %u %u gids %u %u %u, expected all 0", c->name, n, r, e, s, gr, ge, gs);
    char line[128], want[128];
    status_line("Uid", line, sizeof line);
    snprintf(want, sizeof want, "\t0\t0\t0\t%u", c->fsuid);
    if (strcmp(line, want) != 0)
        FAIL("%s thread, tick %ld: Uid:%s, expected Uid:%s", c->name, n, line, want);
    status_line("Gid", line, sizeof line);
    snprintf(want, sizeof want, "\t0\t0\t0\t%u", c->fsgid);
    if (strcmp(line, want) != 0)
        FAIL("%s thread, tick %ld: Gid:%s, expected Gid:%s", c->name, n, line, want);
    status_line("CapEff", line, sizeof line);
    if (strcmp(line, c->capeff) != 0)
        FAIL("%s thread, tick %ld: CapEff:%s, was CapEff:%s", c->name, n, line, c->capeff);
    if (prctl(PR_GET_DUMPABLE) != dumpable0)
        FAIL("%s thread, tick %ld: PR_GET_DUMPABLE is %d, was %d", c->name, n, prctl(PR_GET_DUMPABLE), dumpable0);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.%ld", wd, c->name, n);
    int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    struct stat st;
    if (f < 0 || fstat(f, &st) != 0)
        FAIL("%s thread, tick %ld: creating %s: %s", c->name, n, path, strerror(errno));
    close(f);
    if (unlink(path) != 0)
        FAIL("%s thread, tick %ld: unlink %s: %s", c->name, n, path, strerror(errno));
    if (st.st_uid != c->fsuid || st.st_gid != c->fsgid)
        FAIL("%s thread, tick %ld: a new file belongs to %u:%u, expected %u:%u", c->name, n, st.st_uid, st.st_gid,
             c->fsuid, c->fsgid);
}

static void *second(void *arg)
{
    (void)arg;
    setfsuid(second_creds.fsuid);
    setfsgid(second_creds.fsgid);
    status_line("CapEff", second_creds.capeff, sizeof second_creds.capeff);
    for (;;) {
        long n;
        if (read(req[0], &n, sizeof n) != sizeof n)
            FAIL("second thread: reading a request: %s", strerror(errno));
        check(&second_creds, n);
        if (write(ans[1], &n, sizeof n) != sizeof n)
            FAIL("second thread: answering: %s", strerror(errno));
    }
    return NULL;
}

static void check_both(long n)
{
    check(&main_creds, n);
    long got;
    if (write(req[1], &n, sizeof n) != sizeof n || read(ans[0], &got, sizeof got) != sizeof got || got != n)
        FAIL("tick %ld: asking the second thread: %s", n, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: fsuid WORKDIR");
    wd = argv[1];
    char stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", wd);
    if (geteuid() != 0)
        FAIL("must be started as root");
    if (chmod(wd, 0777) != 0 || pipe(req) || pipe(ans))
        FAIL("setup: %s", strerror(errno));
    setfsuid(main_creds.fsuid);
    setfsgid(main_creds.fsgid);
    status_line("CapEff", main_creds.capeff, sizeof main_creds.capeff);
    dumpable0 = prctl(PR_GET_DUMPABLE);
    pthread_t t;
    if (pthread_create(&t, NULL, second, NULL) != 0)
        FAIL("pthread_create failed");
    check_both(0);
    say("CREDS main %u:%u CapEff:%s second %u:%u CapEff:%s dumpable %d", main_creds.fsuid, main_creds.fsgid,
        main_creds.capeff, second_creds.fsuid, second_creds.fsgid, second_creds.capeff, dumpable0);

    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check_both(n);
            say("PASS %ld", n - 1);
            return 0;
        }
        check_both(n);
        say("tick %ld", n);
        tick_sleep();
    }
}
