/* shmem: shared memory inside one process. argv[1] = workdir. Protocol as in README.md.
 *  - a memfd "jit" of 1 MiB with a hole in the middle, mapped twice (a read-write view and a
 *    read-execute view of the same pages, as .NET's W^X double mapping does) and its fd kept open;
 *    writes through the RW view must show in the RX view, and through the fd;
 *  - a sealed memfd (F_SEAL_SHRINK | F_SEAL_GROW) whose seals must survive;
 *  - 256 KiB of MAP_SHARED | MAP_ANONYMOUS memory.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include "target.h"

#define JIT_SIZE (1 << 20)
#define ANON_SIZE (256 << 10)

static uint8_t pattern(long i, long round) { return (uint8_t)(i * 31 + round * 7 + 1); }

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: shmem WORKDIR");
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    int jit = memfd_create("jit", MFD_CLOEXEC);
    if (jit < 0 || ftruncate(jit, JIT_SIZE) != 0)
        FAIL("memfd: %s", strerror(errno));
    uint8_t *rw = mmap(NULL, JIT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, jit, 0);
    uint8_t *rx = mmap(NULL, JIT_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, jit, 0);
    int sealed = memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (ftruncate(sealed, 8192) != 0 || write(sealed, "sealed!", 7) != 7 || fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
        FAIL("sealed memfd: %s", strerror(errno));
    uint8_t *anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rw == MAP_FAILED || rx == MAP_FAILED || anon == MAP_FAILED)
        FAIL("mmap: %s", strerror(errno));
    /* first and last quarter written; the middle stays a hole */
    for (long i = 0; i < JIT_SIZE; i++)
        if (i < JIT_SIZE / 4 || i >= 3 * JIT_SIZE / 4)
            rw[i] = pattern(i, 0);
    for (long i = 0; i < ANON_SIZE; i++)
        anon[i] = pattern(i, 0);
    say("READY");
    for (long n = 1;; n++) {
        long round = n - 1;
        for (long i = 0; i < JIT_SIZE; i += 4099) {
            uint8_t want = (i < JIT_SIZE / 4 || i >= 3 * JIT_SIZE / 4) ? pattern(i, i < 4096 ? round : 0) : 0;
            if (rx[i] != want)
                FAIL("jit byte %ld is %d through the RX view, expected %d (round %ld)", i, rx[i], want, round);
        }
        for (long i = 0; i < ANON_SIZE; i += 1031)
            if (anon[i] != pattern(i, i < 4096 ? round : 0))
                FAIL("shared anonymous byte %ld is %d", i, anon[i]);
        uint8_t b;
        if (pread(jit, &b, 1, 100) != 1 || b != pattern(100, round))
            FAIL("memfd read through the fd: %d", b);
        if (fcntl(sealed, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW))
            FAIL("seals are %d", fcntl(sealed, F_GET_SEALS));
        char text[8] = "";
        if (pread(sealed, text, 7, 0) != 7 || memcmp(text, "sealed!", 7) != 0)
            FAIL("sealed memfd holds '%.7s'", text);
        if (access(stop, F_OK) == 0) {
            say("PASS %ld", n - 1);
            return 0;
        }
        /* the first page of each changes every round */
        for (long i = 0; i < 4096; i++) {
            rw[i] = pattern(i, n);
            anon[i] = pattern(i, n);
        }
        say("tick %ld", n);
        tick_sleep();
    }
}
