/* churn <wd>: runs short-lived children and threads one after another, as a shell running commands
 * and a pool starting workers do: each forked child exits at once with status 7, and is reaped and
 * checked; each thread returns its argument, and is joined and checked. So a checkpoint meets
 * children and threads that exit between being listed and being stopped. A 1 MiB buffer of its own,
 * one page rewritten per tick, is checked every tick. Protocol as in README.md; tick line:
 * "tick <n> children=<total> threads=<total>". At stop: every page checked, "PASS <n>".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include "target.h"

#define PAGE 4096
#define PAGES 256

static uint64_t mem[PAGES * PAGE / 8];
static uint64_t gen[PAGES];

static void check_page(size_t page) {
    for (size_t i = 0; i < PAGE / 8; i++)
        if (mem[page * PAGE / 8 + i] != gen[page] * 1000003 + i)
            FAIL("page %zu word %zu: %llu, expected %llu", page, i, (unsigned long long)mem[page * PAGE / 8 + i], (unsigned long long)(gen[page] * 1000003 + i));
}

static void *returns(void *arg) { return arg; }

static void write_page(size_t page, uint64_t g) {
    gen[page] = g;
    for (size_t i = 0; i < PAGE / 8; i++)
        mem[page * PAGE / 8 + i] = g * 1000003 + i;
}

int main(int argc, char **argv) {
    if (argc < 2) FAIL("usage: churn <wd>");
    char stop[TARGET_LINE_MAX];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    for (size_t p = 0; p < PAGES; p++)
        write_page(p, 1);
    say("READY");
    long children = 0, threads = 0;
    for (int n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            for (size_t p = 0; p < PAGES; p++)
                check_page(p);
            say("PASS %d", n - 1);
            return 0;
        }
        check_page((size_t)n % PAGES);
        write_page((size_t)n % PAGES, (uint64_t)n + 1);
        /* About 20 ms of children, one at a time: the tick's pause. */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            pid_t child = fork();
            if (child < 0) FAIL("fork: %s", strerror(errno));
            if (child == 0) _exit(7);
            int status;
            if (waitpid(child, &status, 0) != child) FAIL("waitpid: %s", strerror(errno));
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 7) FAIL("child %d: status %d", (int)child, status);
            children++;
            pthread_t thread;
            int r = pthread_create(&thread, NULL, returns, &threads);
            if (r) FAIL("pthread_create: %s", strerror(r));
            void *back;
            if ((r = pthread_join(thread, &back))) FAIL("pthread_join: %s", strerror(r));
            if (back != &threads) FAIL("a thread returned %p, not %p", back, (void *)&threads);
            threads++;
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 20000000L);
        say("tick %d children=%ld threads=%ld", n, children, threads);
    }
}
