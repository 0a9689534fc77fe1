/* Benchmark target: a tree of 3 processes joined by a pipe (main → writer child, reader child). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    int p[2];
    if (pipe(p))
        return 1;
    if (fork() == 0) { close(p[0]); for (;;) { if (write(p[1], "x", 1) != 1) return 1; sleep(1); } }
    if (fork() == 0) { close(p[1]); char c; for (;;) if (read(p[0], &c, 1) <= 0) return 1; }
    close(p[0]);
    close(p[1]);
    printf("READY\n");
    fflush(stdout);
    for (;;)
        sleep(1);
}
