/* settings: what threads set for themselves about how they run survives a restore: per thread the
 * nice value, scheduling policy, CPU mask, I/O priority, timer slack, machine-check kill policy and
 * keep-capabilities flag (main and a second thread set different ones: SCHED_BATCH on CPU 0, and
 * SCHED_OTHER on CPU 1; idle I/O for the second); per process transparent huge
 * pages disabled and oom_score_adj. Protocol as in README.md (argv[1] = workdir, READY, "tick <n>",
 * PASS on <workdir>/stop); every tick checks every setting of both threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "target.h"

#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)
#define IOPRIO(class, level) (((class) << 13) | (level))

struct wanted { const char *who; int nice, policy, cpu, ioprio, mce; unsigned long slack; int keepcaps; };

static const struct wanted main_wants = {"main", 5, SCHED_BATCH, 0, IOPRIO(2, 6), PR_MCE_KILL_EARLY, 123456, 1};
static const struct wanted other_wants = {"other", 7, SCHED_OTHER, 1, IOPRIO(3, 0), PR_MCE_KILL_LATE, 654321, 0};

static void set_mine(const struct wanted *w)
{
    struct sched_param p = {0};
    CHECK(sched_setscheduler(0, w->policy, &p) == 0, "%s: sched_setscheduler: %s", w->who, strerror(errno));
    CHECK(setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice) == 0, "%s: setpriority: %s", w->who, strerror(errno));
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0, "%s: sched_setaffinity: %s", w->who, strerror(errno));
    CHECK(syscall(SYS_ioprio_set, 1, 0, w->ioprio) == 0, "%s: ioprio_set: %s", w->who, strerror(errno));
    CHECK(prctl(PR_SET_TIMERSLACK, w->slack, 0, 0, 0) == 0, "%s: PR_SET_TIMERSLACK: %s", w->who, strerror(errno));
    CHECK(prctl(PR_MCE_KILL, PR_MCE_KILL_SET, w->mce, 0, 0) == 0, "%s: PR_MCE_KILL: %s", w->who, strerror(errno));
    CHECK(prctl(PR_SET_KEEPCAPS, w->keepcaps, 0, 0, 0) == 0, "%s: PR_SET_KEEPCAPS: %s", w->who, strerror(errno));
}

static void check_mine(const struct wanted *w)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    CHECK(errno == 0 && nice == w->nice, "%s: nice %d, expected %d", w->who, nice, w->nice);
    CHECK(sched_getscheduler(0) == w->policy, "%s: policy %d, expected %d", w->who, sched_getscheduler(0), w->policy);
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 && CPU_ISSET(w->cpu, &set),
          "%s: CPU mask of %d CPUs, expected CPU %d only", w->who, CPU_COUNT(&set), w->cpu);
    long ioprio = syscall(SYS_ioprio_get, 1, 0);
    CHECK(ioprio == w->ioprio, "%s: I/O priority %lx, expected %x", w->who, ioprio, w->ioprio);
    CHECK((unsigned long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == w->slack, "%s: timer slack %d, expected %lu", w->who, prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), w->slack);
    CHECK(prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) == w->mce, "%s: MCE kill policy %d, expected %d", w->who, prctl(PR_MCE_KILL_GET, 0, 0, 0, 0), w->mce);
    CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == w->keepcaps, "%s: keepcaps %d, expected %d", w->who, prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), w->keepcaps);
}

static void check_process(void)
{
    CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "transparent huge pages are not disabled");
    FILE *f = fopen("/proc/self/oom_score_adj", "r");
    int adj = 0;
    CHECK(f && fscanf(f, "%d", &adj) == 1, "cannot read oom_score_adj");
    fclose(f);
    CHECK(adj == 500, "oom_score_adj %d, expected 500", adj);
}

static volatile int other_ready, other_checks;

static void *other(void *arg)
{
    (void)arg;
    set_mine(&other_wants);
    other_ready = 1;
    for (;;) {
        check_mine(&other_wants);
        other_checks++;
        usleep(10000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: settings WORKDIR");
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 2, "needs two CPUs");
    set_mine(&main_wants);
    CHECK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "PR_SET_THP_DISABLE: %s", strerror(errno));
    FILE *f = fopen("/proc/self/oom_score_adj", "w");
    CHECK(f && fprintf(f, "500") > 0 && fclose(f) == 0, "cannot write oom_score_adj: %s", strerror(errno));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other, NULL) == 0, "pthread_create failed");
    while (!other_ready)
        usleep(1000);
    say("READY");
    for (long n = 1;; n++) {
        check_mine(&main_wants);
        check_process();
        if (access(stop, F_OK) == 0) {
            int seen = other_checks;
            for (int i = 0; i < 200 && other_checks == seen; i++)
                usleep(10000);
            CHECK(other_checks > seen, "the other thread stopped checking");
            say("PASS %ld", n - 1);
            return 0;
        }
        say("tick %ld", n);
        usleep(20000);
    }
}
