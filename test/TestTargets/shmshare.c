/* shmshare: memory and deleted files shared between processes other than by one inherited mapping.
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n>", PASS on <workdir>/stop.
 * Main (P) and two children (A, B); each region has a word per process (P at 0, A at 8, B at 16):
 *  R1 memfd: P maps it; A maps it again from the inherited fd (its own mapping, elsewhere).
 *  R2 shared anonymous memory made by P before the fork, then unmapped by P: only A has it, twice
 *     (a second view made with mremap(old_size = 0)); A writes through one and reads the other.
 *  R3 shared anonymous memory all three inherit at the same place.
 *  R4 a file deleted while open and mapped by P and A (MAP_SHARED); its fd is shared by all three
 *     (one offset): every tick each appends its word after the first page, in turn.
 *  R5 a POSIX shared memory object (/dev/shm) that P and A each opened and mapped, then unlinked.
 *  R6 a System V segment A and B attach (P never does), each where the kernel puts it.
 *  R7 (P only) a private mapping of a deleted file with one page written (copy-on-write).
 * Every tick P sends n to B then A over pipes; each writes n into its words and checks what it can
 * see of the others'; P checks every word it can see. At the end P reads the appended log back.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "target.h"

#define SZ 4096
static volatile uint64_t *r1, *r2a, *r2b, *r3, *r4, *r5, *r6, *r7;
static int memfd, logfd, shmid;
static char shmname[64];


/* A child's loop: read n from `in`, write it into its words, check, answer "ok" or the failure. */
static void child(int who, int in, int out)
{
    for (;;) {
        uint64_t n;
        ssize_t got = read(in, &n, sizeof n);
        if (got == 0)
            _exit(0);
        if (got != sizeof n)
            _exit(2);
        char answer[200] = "ok";
        uint64_t mine = n * 10 + (uint64_t)who;
        if (who == 1) {
            r1[1] = n;
            r2a[1] = n;
            if (r2b[1] != n)
                snprintf(answer, sizeof answer, "A: R2's second view shows %lu, not %lu", (unsigned long)r2b[1], (unsigned long)n);
            r3[1] = n;
            r4[1] = n;
            r5[1] = n;
            r6[1] = n;
            if (r6[2] != n) /* B went first */
                snprintf(answer, sizeof answer, "A: R6 shows B's word %lu, not %lu", (unsigned long)r6[2], (unsigned long)n);
        } else {
            r3[2] = n;
            r6[2] = n;
        }
        if (write(logfd, &mine, sizeof mine) != sizeof mine)
            snprintf(answer, sizeof answer, "child %d: write to the shared fd failed", who);
        if (write(out, answer, sizeof answer) != sizeof answer)
            _exit(2);
    }
}

static void ask(int to, int from, uint64_t n, const char *who)
{
    char answer[200];
    if (write(to, &n, sizeof n) != sizeof n || read(from, answer, sizeof answer) != sizeof answer)
        FAIL("child %s does not answer", who);
    if (strcmp(answer, "ok") != 0)
        FAIL("%s", answer);
}

static volatile uint64_t *map_shared(int fd)
{
    void *p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        FAIL("mmap: %s", strerror(errno));
    return p;
}

static void check_log(long ticks)
{
    off_t end = lseek(logfd, 0, SEEK_CUR);
    if (end != SZ + ticks * 3 * 8)
        FAIL("the shared log offset is %ld, expected %ld", (long)end, (long)(SZ + ticks * 3 * 8));
    for (long t = 1; t <= ticks; t++) {
        uint64_t w[3];
        if (pread(logfd, w, sizeof w, SZ + (t - 1) * 24) != sizeof w)
            FAIL("the shared log is short at tick %ld", t);
        if (w[0] != (uint64_t)t * 10 || w[1] != (uint64_t)t * 10 + 2 || w[2] != (uint64_t)t * 10 + 1)
            FAIL("the shared log at tick %ld holds %lu %lu %lu", t, (unsigned long)w[0], (unsigned long)w[1], (unsigned long)w[2]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: shmshare WORKDIR");
    char path[4200], stop[4200];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);

    memfd = memfd_create("shared-memfd", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, SZ) != 0)
        FAIL("memfd: %s", strerror(errno));
    r1 = map_shared(memfd);
    void *r2 = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    r3 = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r2 == MAP_FAILED || r3 == MAP_FAILED)
        FAIL("anonymous shared memory: %s", strerror(errno));

    snprintf(path, sizeof path, "%s/deleted.bin", argv[1]);
    logfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (logfd < 0 || ftruncate(logfd, SZ) != 0 || lseek(logfd, SZ, SEEK_SET) != SZ)
        FAIL("deleted.bin: %s", strerror(errno));
    r4 = map_shared(logfd);
    unlink(path);

    snprintf(shmname, sizeof shmname, "/amber-shmshare-%d", getpid());
    int shm = shm_open(shmname, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (shm < 0 || ftruncate(shm, SZ) != 0)
        FAIL("shm_open: %s", strerror(errno));
    r5 = map_shared(shm);
    close(shm);

    shmid = shmget(IPC_PRIVATE, SZ, IPC_CREAT | 0600);
    if (shmid < 0)
        FAIL("shmget: %s", strerror(errno));

    snprintf(path, sizeof path, "%s/private.bin", argv[1]);
    int priv = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char page[2 * SZ];
    memset(page, 'f', sizeof page);
    if (priv < 0 || write(priv, page, sizeof page) != sizeof page)
        FAIL("private.bin: %s", strerror(errno));
    r7 = mmap(NULL, 2 * SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, priv, 0);
    if (r7 == MAP_FAILED)
        FAIL("private mapping: %s", strerror(errno));
    close(priv);
    unlink(path);
    r7[0] = 0x1234567887654321ULL; /* the first page is now ours; the second is still the file's */

    int toA[2], fromA[2], toB[2], fromB[2];
    if (pipe(toA) || pipe(fromA) || pipe(toB) || pipe(fromB))
        FAIL("pipe: %s", strerror(errno));
    pid_t a = fork();
    if (a == 0) {
        close(toA[1]); close(fromA[0]); close(toB[0]); close(toB[1]); close(fromB[0]); close(fromB[1]);
        munmap((void *)r1, SZ);
        r1 = map_shared(memfd); /* its own mapping of the inherited memfd */
        r2a = r2;
        r2b = mremap(r2, 0, SZ, MREMAP_MAYMOVE); /* a second view of the same pages */
        if (r2b == MAP_FAILED)
            _exit(4);
        int s = shm_open(shmname, O_RDWR, 0);
        if (s < 0)
            _exit(5);
        munmap((void *)r5, SZ);
        r5 = map_shared(s);
        close(s);
        r6 = shmat(shmid, NULL, 0);
        if (r6 == (void *)-1)
            _exit(6);
        child(1, toA[0], fromA[1]);
    }
    pid_t b = fork();
    if (b == 0) {
        close(toB[1]); close(fromB[0]); close(toA[0]); close(toA[1]); close(fromA[0]); close(fromA[1]);
        munmap((void *)r1, SZ);
        munmap(r2, SZ);
        r6 = shmat(shmid, NULL, 0);
        if (r6 == (void *)-1)
            _exit(6);
        child(2, toB[0], fromB[1]);
    }
    if (a < 0 || b < 0)
        FAIL("fork: %s", strerror(errno));
    close(toA[0]); close(fromA[1]); close(toB[0]); close(fromB[1]);
    munmap(r2, SZ); /* only A has R2 now */
    /* Wait until both children are set up (their first answer), then unlink the names. */
    ask(toB[1], fromB[0], 0, "B");
    ask(toA[1], fromA[0], 0, "A");
    shm_unlink(shmname);
    shmctl(shmid, IPC_RMID, NULL); /* goes when the last process detaches */
    lseek(logfd, SZ, SEEK_SET);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check_log(n - 1);
            close(toA[1]);
            close(toB[1]);
            int sa, sb;
            waitpid(a, &sa, 0);
            waitpid(b, &sb, 0);
            if (!WIFEXITED(sa) || WEXITSTATUS(sa) != 0 || !WIFEXITED(sb) || WEXITSTATUS(sb) != 0)
                FAIL("children ended with %d and %d", sa, sb);
            say("PASS %ld", n - 1);
            return 0;
        }
        uint64_t mine = (uint64_t)n * 10;
        if (write(logfd, &mine, sizeof mine) != sizeof mine)
            FAIL("write to the shared fd: %s", strerror(errno));
        r1[0] = r3[0] = r4[0] = r5[0] = (uint64_t)n;
        ask(toB[1], fromB[0], (uint64_t)n, "B");
        ask(toA[1], fromA[0], (uint64_t)n, "A");
        if (r1[1] != (uint64_t)n || r3[1] != (uint64_t)n || r3[2] != (uint64_t)n || r4[1] != (uint64_t)n || r5[1] != (uint64_t)n)
            FAIL("tick %ld: P sees A's words R1 %lu R3 %lu R4 %lu R5 %lu and B's R3 %lu", n, (unsigned long)r1[1],
                 (unsigned long)r3[1], (unsigned long)r4[1], (unsigned long)r5[1], (unsigned long)r3[2]);
        if (r7[0] != 0x1234567887654321ULL || ((volatile char *)r7)[SZ] != 'f')
            FAIL("the private mapping of the deleted file lost its contents");
        say("tick %ld", n);
        tick_sleep();
    }
}
