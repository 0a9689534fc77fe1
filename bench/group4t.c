/* Benchmark target: one process of a group: 4 threads (3 asleep), 1 MiB of touched memory. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *idle(void *arg) { (void)arg; for (;;) sleep(1); }

int main(void)
{
    size_t len = 1u << 20;
    uint64_t *p = malloc(len);
    for (size_t i = 0; i < len / 8; i++)
        p[i] = i * 0x9e3779b97f4a7c15ull + 1;
    pthread_t t;
    for (int i = 0; i < 3; i++)
        pthread_create(&t, NULL, idle, NULL);
    printf("READY\n");
    fflush(stdout);
    idle(NULL);
}
