/* strict: a process in seccomp strict mode (read, write, _exit and sigreturn only), which amber
 * refuses to checkpoint. argv[1] = workdir. Prints READY once in strict mode, then waits forever
 * in a read of a pipe whose write end it holds itself: it never ticks and never exits.
 */
#define _GNU_SOURCE
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include "target.h"

int main(int argc, char **argv)
{
    int p[2];
    if (argc < 2 || !*argv[1])
        FAIL("usage: strict WORKDIR");
    if (pipe(p))
        FAIL("pipe: %s", strerror(errno));
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
        FAIL("PR_SET_SECCOMP strict: %s", strerror(errno));
    say("READY");
    char c;
    for (;;)
        if (read(p[0], &c, 1) < 0)
            say("read: %d", errno);
}
