/* Machine limit for restore: time to populate N MiB of fresh anonymous memory in bulk
 * (MADV_POPULATE_WRITE), and to copy N MiB into it from a file in the page cache (pread). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 64) << 20;
    double t0 = now();
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || madvise(p, len, MADV_POPULATE_WRITE) != 0)
        return 1;
    double populate = now() - t0;
    printf("%.4f\n", populate);
    return 0;
}
