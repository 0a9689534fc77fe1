/* seccomp: a process under a seccomp filter (uname fails with EPERM; everything else allowed), with
 * no_new_privs as an unprivileged filter needs. argv[1] = workdir. Protocol as in README.md; every
 * tick checks the filter still acts and /proc/self/status still says "Seccomp: 2".
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include "target.h"

static void check(void)
{
    struct utsname u;
    if (uname(&u) == 0 || errno != EPERM)
        FAIL("uname was allowed, or failed with errno %d instead of EPERM", errno);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int mode = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    if (f)
        fclose(f);
    if (mode != 2)
        FAIL("seccomp mode is %d, expected 2 (filter)", mode);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: seccomp WORKDIR");
    char stop[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof *code, .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        FAIL("installing the filter: %s", strerror(errno));
    check();
    say("READY");
    for (long n = 1;; n++) {
        check();
        if (access(stop, F_OK) == 0) {
            say("PASS %ld", n - 1);
            return 0;
        }
        say("tick %ld", n);
        tick_sleep();
    }
}
