/* respawn: a master that replaces its worker on SIGUSR1, as `nginx -s reload` does. argv[1] =
 * workdir. Protocol as in README.md. The master keeps 8 MiB whose pages hold the tick they were last
 * written in (a fixed pattern before; two rewritten per tick) and checks all of them every 10 ticks; each worker keeps 1 MiB
 * of its own the same way and writes "<generation> <n>" lines to <workdir>/worker.txt. On SIGUSR1 the
 * master ends the worker (SIGTERM, checked exit 0) and forks the next generation, printing
 * "worker <generation> <pid>". Main prints "tick <n> gen=<generation>".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "target.h"

#define PAGE 4096
#define INIT 0x5a5a5a5a5a5a5a5aULL /* every page holds something from the start: none is a zero page */
static volatile sig_atomic_t reload, quit;
static void on_usr1(int sig) { (void)sig; reload = 1; }
static void on_term(int sig) { (void)sig; quit = 1; }

/* Every page holds the tick that last wrote it; tick n rewrites pages n*7 % count and n*13 % count. */
static uint64_t *new_pages(size_t pages)
{
    uint64_t *mem = malloc(pages * PAGE);
    if (!mem)
        FAIL("malloc: %s", strerror(errno));
    for (size_t i = 0; i < pages * PAGE / 8; i++)
        mem[i] = INIT;
    return mem;
}

static void write_pages(uint64_t *mem, size_t pages, long n)
{
    size_t a = (size_t)n * 7 % pages, b = (size_t)n * 13 % pages;
    for (size_t i = 0; i < PAGE / 8; i++)
        mem[a * PAGE / 8 + i] = mem[b * PAGE / 8 + i] = (uint64_t)n;
}

static void check_pages(const char *who, const uint64_t *mem, size_t pages, long n)
{
    for (size_t p = 0; p < pages; p++) {
        uint64_t want = INIT;
        for (long t = n; t >= 1; t--)
            if ((size_t)t * 7 % pages == p || (size_t)t * 13 % pages == p) { want = (uint64_t)t; break; }
        for (size_t i = 0; i < PAGE / 8; i++)
            if (mem[p * PAGE / 8 + i] != want)
                FAIL("%s: page %zu word %zu is %lu, expected %lu at tick %ld", who, p, i, (unsigned long)mem[p * PAGE / 8 + i], (unsigned long)want, n);
    }
}

static void worker(const char *workdir, int generation, pid_t master)
{
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != master)
        _exit(2);
    char path[4200];
    snprintf(path, sizeof path, "%s/worker.txt", workdir);
    int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    size_t pages = 256;
    uint64_t *mem = new_pages(pages);
    if (log < 0)
        FAIL("worker %d: setup: %s", generation, strerror(errno));
    for (long n = 1; !quit; n++) {
        if (getppid() != master)
            FAIL("worker %d: parent is %d, was %d", generation, getppid(), master);
        write_pages(mem, pages, n);
        if (n % 10 == 0)
            check_pages("worker", mem, pages, n);
        char line[64];
        int len = snprintf(line, sizeof line, "%d %ld\n", generation, n);
        if (write(log, line, (size_t)len) != len)
            FAIL("worker %d: write: %s", generation, strerror(errno));
        tick_sleep();
    }
    _exit(0);
}

static pid_t start_worker(const char *workdir, int generation)
{
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        worker(workdir, generation, master);
    say("worker %d %d", generation, pid);
    return pid;
}

static void end_worker(pid_t pid, int generation)
{
    int st;
    kill(pid, SIGTERM);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("worker %d ended with status 0x%x", generation, st);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: respawn WORKDIR");
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    size_t pages = 2048;
    uint64_t *mem = new_pages(pages);
    int generation = 1;
    pid_t current = start_worker(argv[1], generation);
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            check_pages("master", mem, pages, n - 1);
            end_worker(current, generation);
            say("PASS %ld", n - 1);
            return 0;
        }
        if (reload) {
            reload = 0;
            end_worker(current, generation);
            current = start_worker(argv[1], ++generation);
        }
        int st;
        if (waitpid(current, &st, WNOHANG) != 0)
            FAIL("worker %d died with status 0x%x", generation, st);
        write_pages(mem, pages, n);
        if (n % 10 == 0)
            check_pages("master", mem, pages, n);
        say("tick %ld gen=%d", n, generation);
        tick_sleep();
    }
}
