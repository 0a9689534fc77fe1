/* signals.c - checkpoint/restore target: signal handlers, alternate signal
 * stack, blocked mask and signals left pending across the checkpoint.
 *
 * usage: signals <workdir>
 * Protocol: READY, then every ~20 ms "tick <n> usr1=<count>". SIGUSR1 may be
 * sent at any time (handler must run on the altstack). If <workdir>/stop
 * exists: full verification, deliver the pending signals, "PASS <n>", exit 0.
 *
 * Kept pending through the checkpoint: SIGUSR2 (sigqueue value 4242) and two
 * queued instances of SIGRTMIN+3 (values 1 then 2). A restore must recreate
 * both instances of the RT signal, in order, with their si_value.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "target.h"

#define ALTSZ (64 * 1024)

static char *altstack;
static volatile sig_atomic_t usr1_count, usr1_bad;  /* bad: 1 = off altstack, 2 = SS_ONSTACK missing, 3 = sa_mask not applied */
static volatile uintptr_t usr1_bad_addr;
static volatile int usr1_code, usr1_value, usr2_count, usr2_value, usr2_code, usr2_pid;
static volatile int rt_count, rt_values[8], rt_codes[8];
static int RTSIG;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    char local;
    uintptr_t a = (uintptr_t)&local;
    if (a < (uintptr_t)altstack || a >= (uintptr_t)altstack + ALTSZ) { usr1_bad = 1; usr1_bad_addr = a; }
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_ONSTACK)) usr1_bad = 2;
    sigset_t cur;   /* sa_mask (SIGTERM) and SIGUSR1 itself must be blocked now */
    if (sigprocmask(SIG_BLOCK, NULL, &cur) == 0 && (!sigismember(&cur, SIGTERM) || !sigismember(&cur, SIGUSR1)))
        usr1_bad = 3;
    usr1_code = si->si_code; usr1_value = si->si_value.sival_int;
    usr1_count++;
}
static void on_usr2(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    usr2_value = si->si_value.sival_int; usr2_code = si->si_code; usr2_pid = si->si_pid;
    usr2_count++;
}
static void on_rt(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    if (rt_count < 8) { rt_values[rt_count] = si->si_value.sival_int; rt_codes[rt_count] = si->si_code; }
    rt_count++;
}

/* Compare the kernel-visible part of two sigsets (signals 1..64). */
static int set_diff(const sigset_t *a, const sigset_t *b) {
    for (int s = 1; s < 65; s++)
        if (sigismember(a, s) != sigismember(b, s)) return s;
    return 0;
}

static struct sigaction want_usr1, want_usr2, want_rt;   /* read back right after setup */
static sigset_t want_blocked;

static void install(int sig, void (*h)(int, siginfo_t *, void *), int flags, int extra_mask,
                    struct sigaction *readback) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = flags | SA_SIGINFO;
    if (sigemptyset(&sa.sa_mask) || (extra_mask && sigaddset(&sa.sa_mask, extra_mask)))
        FAIL("sigset ops: %s", strerror(errno));
    if (sigaction(sig, &sa, NULL)) FAIL("sigaction(%d): %s", sig, strerror(errno));
    memset(readback, 0, sizeof *readback);
    if (sigaction(sig, NULL, readback)) FAIL("sigaction(%d) readback: %s", sig, strerror(errno));
}

static void check_action(int sig, const struct sigaction *want, int need_flags) {
    struct sigaction got;
    memset(&got, 0, sizeof got);
    if (sigaction(sig, NULL, &got)) FAIL("sigaction(%d, NULL): %s", sig, strerror(errno));
    if (got.sa_sigaction != want->sa_sigaction)
        FAIL("sig %d handler expected %p got %p", sig, (void *)want->sa_sigaction, (void *)got.sa_sigaction);
    if (got.sa_flags != want->sa_flags || (got.sa_flags & need_flags) != need_flags)
        FAIL("sig %d sa_flags expected %#x got %#x", sig, want->sa_flags, got.sa_flags);
    if (got.sa_restorer != want->sa_restorer)
        FAIL("sig %d sa_restorer expected %p got %p", sig, (void *)want->sa_restorer, (void *)got.sa_restorer);
    int d = set_diff(&got.sa_mask, &want->sa_mask);
    if (d) FAIL("sig %d sa_mask differs at signal %d (expected %d got %d)", sig, d,
                sigismember(&want->sa_mask, d), sigismember(&got.sa_mask, d));
}

static void check_state(void) {
    stack_t ss;
    if (sigaltstack(NULL, &ss)) FAIL("sigaltstack(NULL): %s", strerror(errno));
    if (ss.ss_sp != altstack || ss.ss_size != ALTSZ || ss.ss_flags != 0)
        FAIL("altstack expected sp=%p size=%d flags=0 got sp=%p size=%zu flags=%#x",
             (void *)altstack, ALTSZ, ss.ss_sp, ss.ss_size, ss.ss_flags);
    check_action(SIGUSR1, &want_usr1, SA_RESTART | SA_ONSTACK | SA_SIGINFO);
    check_action(SIGUSR2, &want_usr2, SA_RESTART | SA_SIGINFO);
    check_action(RTSIG, &want_rt, SA_RESTART | SA_SIGINFO);
    sigset_t cur, pend;
    if (sigprocmask(SIG_BLOCK, NULL, &cur)) FAIL("sigprocmask: %s", strerror(errno));
    int d = set_diff(&cur, &want_blocked);
    if (d) FAIL("blocked mask differs at signal %d (expected %d got %d)", d,
                sigismember(&want_blocked, d), sigismember(&cur, d));
    if (sigpending(&pend)) FAIL("sigpending: %s", strerror(errno));
    if (sigismember(&pend, SIGUSR2) != 1) FAIL("SIGUSR2 no longer pending");
    if (sigismember(&pend, RTSIG) != 1) FAIL("SIGRTMIN+3 (%d) no longer pending", RTSIG);
    if (usr2_count || rt_count) FAIL("blocked signal delivered early: usr2=%d rt=%d", usr2_count, rt_count);
    if (usr1_bad == 1) FAIL("SIGUSR1 handler ran off the altstack: local at %#lx, altstack %p+%d",
                            (unsigned long)usr1_bad_addr, (void *)altstack, ALTSZ);
    if (usr1_bad == 2) FAIL("SIGUSR1 handler: sigaltstack() did not report SS_ONSTACK");
    if (usr1_bad == 3) FAIL("SIGUSR1 handler: SIGTERM (sa_mask) or SIGUSR1 not blocked inside handler");
}

int main(int argc, char **argv) {
    if (argc < 2) { say("FAIL usage: signals <workdir>"); return 1; }
    char stop_path[4096];
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    RTSIG = SIGRTMIN + 3;

    if (!(altstack = malloc(ALTSZ))) FAIL("malloc altstack");
    memset(altstack, 0xa5, ALTSZ);
    stack_t ss = { .ss_sp = altstack, .ss_size = ALTSZ, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL)) FAIL("sigaltstack: %s", strerror(errno));
    /* SIGTERM in SIGUSR1's sa_mask so a lost sa_mask is detectable */
    install(SIGUSR1, on_usr1, SA_RESTART | SA_ONSTACK, SIGTERM, &want_usr1);
    install(SIGUSR2, on_usr2, SA_RESTART, 0, &want_usr2);
    install(RTSIG, on_rt, SA_RESTART, 0, &want_rt);

    sigset_t blk;
    if (sigemptyset(&blk) || sigaddset(&blk, SIGUSR2) || sigaddset(&blk, RTSIG)) FAIL("sigaddset");
    if (sigprocmask(SIG_BLOCK, &blk, NULL)) FAIL("sigprocmask(BLOCK): %s", strerror(errno));
    if (sigprocmask(SIG_BLOCK, NULL, &want_blocked)) FAIL("sigprocmask: %s", strerror(errno));
    if (sigqueue(getpid(), SIGUSR2, (union sigval){ .sival_int = 4242 })) FAIL("sigqueue USR2: %s", strerror(errno));
    if (sigqueue(getpid(), RTSIG, (union sigval){ .sival_int = 1 })) FAIL("sigqueue RT 1: %s", strerror(errno));
    if (sigqueue(getpid(), RTSIG, (union sigval){ .sival_int = 2 })) FAIL("sigqueue RT 2: %s", strerror(errno));
    check_state();
    say("READY");

    for (unsigned long n = 1;; n++) {
        if (access(stop_path, F_OK) == 0) {
            check_state();
            /* RT signals queue: both instances, in order, with their values */
            sigset_t one;
            sigemptyset(&one); sigaddset(&one, RTSIG);
            if (sigprocmask(SIG_UNBLOCK, &one, NULL)) FAIL("unblock RT: %s", strerror(errno));
            if (rt_count != 2) FAIL("SIGRTMIN+3 delivered %d times, expected 2", rt_count);
            if (rt_values[0] != 1 || rt_values[1] != 2)
                FAIL("SIGRTMIN+3 values expected 1,2 got %d,%d", rt_values[0], rt_values[1]);
            if (rt_codes[0] != SI_QUEUE || rt_codes[1] != SI_QUEUE)
                FAIL("SIGRTMIN+3 si_code expected %d got %d,%d", SI_QUEUE, rt_codes[0], rt_codes[1]);
            sigemptyset(&one); sigaddset(&one, SIGUSR2);
            if (sigprocmask(SIG_UNBLOCK, &one, NULL)) FAIL("unblock USR2: %s", strerror(errno));
            if (usr2_count != 1) FAIL("SIGUSR2 delivered %d times, expected 1", usr2_count);
            if (usr2_value != 4242 || usr2_code != SI_QUEUE)
                FAIL("SIGUSR2 expected value 4242 code %d got value %d code %d", SI_QUEUE, usr2_value, usr2_code);
            if (usr2_pid != getpid()) FAIL("SIGUSR2 si_pid expected %d got %d", getpid(), usr2_pid);
            sigset_t pend;
            if (sigpending(&pend) || sigismember(&pend, SIGUSR2) || sigismember(&pend, RTSIG))
                FAIL("signals still pending after unblock");
            if (usr1_bad) FAIL("SIGUSR1 handler check %d failed", (int)usr1_bad);
            say("PASS %lu", n - 1);
            exit(0);
        } else if (errno != ENOENT) FAIL("access(%s): %s", stop_path, strerror(errno));
        check_state();
        say("tick %lu usr1=%d", n, (int)usr1_count);
        tick_sleep();   /* SIGUSR1 interrupts the sleep (nanosleep ignores SA_RESTART): it continues */
    }
}
