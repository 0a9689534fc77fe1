/* sharedlog: a parent and its child writing through one inherited fd (no O_APPEND): one shared
 * offset, so their lines never overwrite each other. argv[1] = workdir. Protocol as in README.md.
 * On the stop file the child writes its line count to <workdir>/child-count and exits; the parent
 * then checks that <workdir>/shared.txt holds every line of both, each whole, and prints PASS.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/wait.h>
#include "target.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: sharedlog WORKDIR");
    char stop[4096], path[4096], count_path[4096];
    snprintf(stop, sizeof stop, "%s/stop", argv[1]);
    snprintf(path, sizeof path, "%s/shared.txt", argv[1]);
    snprintf(count_path, sizeof count_path, "%s/child-count", argv[1]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        FAIL("open: %s", strerror(errno));
    pid_t child = fork();
    long mine = 0;
    const char *role = child == 0 ? "child" : "parent";
    if (child != 0)
        say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0)
            break;
        char line[64];
        int len = snprintf(line, sizeof line, "%s %ld\n", role, n);
        if (write(fd, line, (size_t)len) != len)
            FAIL("%s: write: %s", role, strerror(errno));
        mine++;
        if (child != 0)
            say("tick %ld", n);
        tick_sleep();
    }
    if (child == 0) {
        FILE *f = fopen(count_path, "w");
        fprintf(f, "%ld\n", mine);
        fclose(f);
        _exit(0);
    }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("child ended with 0x%x", st);
    long theirs = -1;
    FILE *c = fopen(count_path, "r");
    if (!c || fscanf(c, "%ld", &theirs) != 1)
        FAIL("no child count");
    fclose(c);
    FILE *f = fopen(path, "r");
    char line[64];
    long lines = 0, parent_next = 1, child_next = 1;
    while (fgets(line, sizeof line, f)) {
        long k;
        if (sscanf(line, "parent %ld", &k) == 1 && k == parent_next)
            parent_next++;
        else if (sscanf(line, "child %ld", &k) == 1 && k == child_next)
            child_next++;
        else
            FAIL("line %ld of shared.txt is '%s': overwritten or out of order", lines + 1, line);
        lines++;
    }
    if (parent_next - 1 != mine || child_next - 1 != theirs)
        FAIL("shared.txt has %ld parent and %ld child lines, expected %ld and %ld", parent_next - 1, child_next - 1, mine, theirs);
    if (lseek(fd, 0, SEEK_CUR) != (off_t)ftell(f))
        FAIL("the shared offset %ld is not the file size %ld", (long)lseek(fd, 0, SEEK_CUR), ftell(f));
    say("PASS %ld", lines);
    return 0;
}
