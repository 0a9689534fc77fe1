/* holdpid: takes the PIDs named on its command line (clone3 with set_tid, as root) with children that
 * only wait, so that nothing else can have them; they die with it (PR_SET_PDEATHSIG).
 * Prints "HELD <pid>" for each, then "READY", and waits to be killed. A PID it cannot take is a FAIL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "target.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        pid_t want = (pid_t)atoi(argv[i]);
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        args.set_tid = (uint64_t)(uintptr_t)&want;
        args.set_tid_size = 1;
        long got = syscall(SYS_clone3, &args, sizeof args);
        if (got < 0)
            FAIL("clone3(set_tid=%d): %s", want, strerror(errno));
        if (got == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (;;)
                pause();
        }
        say("HELD %ld", got);
    }
    say("READY");
    for (;;)
        pause();
}
