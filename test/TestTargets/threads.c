/* threads: several threads, each with state only it has, all stopped at one moment and restored.
 * Protocol as in README.md: argv[1] = workdir, READY, "tick <n> ...", PASS on <workdir>/stop.
 *  - ping/pong: two threads hand a counter back and forth through a mutex and a condition variable
 *    (futex waits); every value must be seen in order.
 *  - sleeper: nanosleep loop with its own signal mask (SIGUSR2 blocked only here), alternate stack,
 *    thread name and __thread (fs_base) data.
 *  - spinner: a tight loop keeping a running sum, never entering the kernel.
 *  Each thread checks its TID (gettid) and name never change; main checks everybody makes progress.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(1, line, (size_t)n) != n)
        _exit(3);
}

#define FAIL(...) do { say("FAIL " __VA_ARGS__); say("\n"); exit(1); } while (0)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_changed = PTHREAD_COND_INITIALIZER;
static long ball;          /* even: ping's turn, odd: pong's */
static volatile int stopping;
static volatile long sleeper_rounds, spinner_rounds;
static __thread long tls_marker;

static void check_identity(pid_t tid, const char *name)
{
    if (syscall(SYS_gettid) != tid)
        FAIL("thread %s: gettid %ld, was %d", name, syscall(SYS_gettid), tid);
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(comm, sizeof comm, f))
        FAIL("thread %s: cannot read %s", name, path);
    fclose(f);
    comm[strcspn(comm, "\n")] = 0;
    if (strcmp(comm, name) != 0)
        FAIL("thread %s: name is now '%s'", name, comm);
}

static void *player(void *arg)
{
    long parity = (long)arg;
    const char *name = parity ? "pong" : "ping";
    pthread_setname_np(pthread_self(), name);
    pid_t tid = (pid_t)syscall(SYS_gettid);
    tls_marker = 1000 + parity;
    long last = -1;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (ball % 2 != parity && !stopping)
            pthread_cond_wait(&turn_changed, &lock);
        if (stopping) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        if (last >= 0 && ball != last + 2)
            FAIL("%s: ball %ld after %ld", name, ball, last);
        last = ball++;
        pthread_cond_broadcast(&turn_changed);
        pthread_mutex_unlock(&lock);
        if (tls_marker != 1000 + parity)
            FAIL("%s: TLS %ld", name, tls_marker);
        if (last % 200 == parity)
            check_identity(tid, name);
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static char altstack[65536];

static void *sleeper(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sleeper");
    pid_t tid = (pid_t)syscall(SYS_gettid);
    tls_marker = 77;
    sigset_t mine;
    sigemptyset(&mine);
    sigaddset(&mine, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &mine, NULL);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    if (sigaltstack(&ss, NULL) != 0)
        FAIL("sigaltstack: %s", strerror(errno));
    while (!stopping) {
        struct timespec ts = {0, 30 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        sigset_t now;
        pthread_sigmask(SIG_BLOCK, NULL, &now);
        if (!sigismember(&now, SIGUSR2) || sigismember(&now, SIGUSR1))
            FAIL("sleeper: signal mask changed");
        stack_t cur;
        sigaltstack(NULL, &cur);
        if (cur.ss_sp != altstack || cur.ss_size != sizeof altstack)
            FAIL("sleeper: alternate stack changed");
        if (tls_marker != 77)
            FAIL("sleeper: TLS %ld", tls_marker);
        check_identity(tid, "sleeper");
        sleeper_rounds++;
    }
    return NULL;
}

static void *spinner(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "spinner");
    unsigned long x = 1, sum = 0, i = 0;
    while (!stopping) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        sum += x >> 33;
        if (++i % (1 << 20) == 0) {
            /* recompute from scratch: the registers and stack of this thread must be intact */
            unsigned long y = 1, check = 0;
            for (unsigned long k = 0; k < i; k++) {
                y = y * 6364136223846793005ul + 1442695040888963407ul;
                check += y >> 33;
            }
            if (check != sum || y != x)
                FAIL("spinner: sum %lx, recomputed %lx after %lu steps", sum, check, i);
            spinner_rounds++;
            if (i >= (1ul << 24)) { x = 1; sum = 0; i = 0; }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: threads WORKDIR");
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    pthread_t t[4];
    pthread_create(&t[0], NULL, player, (void *)0);
    pthread_create(&t[1], NULL, player, (void *)1);
    pthread_create(&t[2], NULL, sleeper, NULL);
    pthread_create(&t[3], NULL, spinner, NULL);
    say("READY\n");
    long last_ball = -1, last_sleep = -1, last_spin = -1;
    for (long n = 1;; n++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        pthread_mutex_lock(&lock);
        long b = ball;
        pthread_mutex_unlock(&lock);
        if (n % 5 == 0) {
            if (b == last_ball || sleeper_rounds == last_sleep || spinner_rounds == last_spin)
                FAIL("a thread stopped making progress: ball %ld sleeper %ld spinner %ld", b, sleeper_rounds, spinner_rounds);
            last_ball = b;
            last_sleep = sleeper_rounds;
            last_spin = spinner_rounds;
        }
        if (access(stop, F_OK) == 0) {
            stopping = 1;
            pthread_mutex_lock(&lock);
            pthread_cond_broadcast(&turn_changed);
            pthread_mutex_unlock(&lock);
            for (int i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
            say("PASS %ld\n", n);
            return 0;
        }
        say("tick %ld ball=%ld sleeper=%ld spinner=%ld\n", n, b, sleeper_rounds, spinner_rounds);
    }
}
