/* pty: a pseudo-terminal of the program's own survives a restore, with its state and the bytes in
 * it. The parent P holds the master; its child C starts a session and takes the slave as its
 * controlling terminal (fd 0), in non-canonical mode with its own settings (no echo, VINTR ^X,
 * VMIN 1, ONLCR output); C's child G, in a process group of its own, is the terminal's foreground
 * group and answers each "seq <k>\n" P types with "ack <k>\n" (the terminal makes it "\r\n").
 * G reads only every 30 ms and P reads its answers only every other tick, so bytes usually wait in
 * both directions when the checkpoint comes. To make sure they do, the test creates
 * <workdir>/hold (P stops reading acks, and types at most 12 lines ahead of the acks it read), then
 * <workdir>/hold2 (G stops reading, after at most one more read); both gone, all goes on. Every tick P checks the terminal's name, window size,
 * termios, session and foreground group through the master, and that every ack comes once, in
 * order; C checks its session, controlling terminal and foreground group; G that each seq comes
 * once, in order, and that it is in the foreground. Protocol as in README.md (argv[1] = workdir,
 * READY, "tick <n>", PASS on <workdir>/stop; only P prints ticks).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "target.h"

#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)
#define ROWS 41
#define COLS 132
#define INTR_CHAR 0x18

static char slave_name[64];
static char stop_path[512];
static char hold_path[512];
static char hold2_path[512];

static void check_termios(int fd, const char *who)
{
    struct termios t;
    CHECK(tcgetattr(fd, &t) == 0, "%s: tcgetattr: %s", who, strerror(errno));
    CHECK(!(t.c_lflag & (ICANON | ECHO)) && (t.c_lflag & ISIG), "%s: c_lflag %o", who, t.c_lflag);
    CHECK(t.c_cc[VINTR] == INTR_CHAR && t.c_cc[VMIN] == 1 && t.c_cc[VTIME] == 0, "%s: VINTR %d VMIN %d VTIME %d", who, t.c_cc[VINTR], t.c_cc[VMIN], t.c_cc[VTIME]);
    CHECK((t.c_oflag & (OPOST | ONLCR)) == (OPOST | ONLCR) && !(t.c_iflag & (ICRNL | IXON)), "%s: c_oflag %o c_iflag %o", who, t.c_oflag, t.c_iflag);
}

/* G: answers every seq line, in order, until "quit". */
static void answer(void)
{
    char line[128];
    size_t have = 0;
    long next = 1;
    for (;;) {
        CHECK(tcgetpgrp(0) == getpgrp(), "G: foreground group %d, G's %d", tcgetpgrp(0), getpgrp());
        while (access(hold2_path, F_OK) == 0) usleep(10000);
        ssize_t n = read(0, line + have, sizeof line - 1 - have);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "G: read from the terminal: %zd (%s)", n, strerror(errno));
        have += (size_t)n;
        char *nl;
        while ((nl = memchr(line, '\n', have)) != NULL) {
            *nl = 0;
            long k;
            if (strcmp(line, "quit") == 0) _exit(0);
            CHECK(sscanf(line, "seq %ld", &k) == 1 && k == next, "G: got '%s', expected seq %ld", line, next);
            char reply[64];
            int r = snprintf(reply, sizeof reply, "ack %ld\n", k);
            CHECK(write(0, reply, (size_t)r) == r, "G: write to the terminal: %s", strerror(errno));
            next++;
            size_t used = (size_t)(nl + 1 - line);
            memmove(line, nl + 1, have - used);
            have -= used;
        }
        CHECK(have < sizeof line - 1, "G: a line too long");
        usleep(30000);
    }
}

/* C: the session leader, its controlling terminal the slave. */
static void lead(int ready)
{
    CHECK(setsid() == getpid(), "C: setsid: %s", strerror(errno));
    int s = open(slave_name, O_RDWR);
    CHECK(s >= 0, "C: open %s: %s", slave_name, strerror(errno));
    struct termios t;
    CHECK(tcgetattr(s, &t) == 0, "C: tcgetattr: %s", strerror(errno));
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_lflag |= ISIG;
    t.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
    t.c_oflag |= OPOST | ONLCR;
    t.c_cc[VINTR] = INTR_CHAR;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    CHECK(tcsetattr(s, TCSANOW, &t) == 0, "C: tcsetattr: %s", strerror(errno));
    CHECK(dup2(s, 0) == 0, "C: dup2: %s", strerror(errno));
    close(s);
    pid_t g = fork();
    CHECK(g >= 0, "C: fork: %s", strerror(errno));
    if (g == 0) {
        setpgid(0, 0);
        while (tcgetpgrp(0) != getpgrp()) usleep(1000);
        answer();
    }
    setpgid(g, g);
    CHECK(tcsetpgrp(0, g) == 0, "C: tcsetpgrp: %s", strerror(errno));
    CHECK(write(ready, "r", 1) == 1, "C: write ready: %s", strerror(errno));
    close(ready);
    struct stat st;
    CHECK(stat(slave_name, &st) == 0, "C: stat %s: %s", slave_name, strerror(errno));
    for (;;) {
        CHECK(getsid(0) == getpid(), "C: session %d, expected its own %d", getsid(0), getpid());
        CHECK(tcgetpgrp(0) == g, "C: foreground group %d, expected %d", tcgetpgrp(0), g);
        CHECK(tcgetsid(0) == getpid(), "C: the terminal's session %d, expected %d", tcgetsid(0), getpid());
        const char *name = ttyname(0);
        CHECK(name && strcmp(name, slave_name) == 0, "C: ttyname %s, expected %s", name ? name : "(none)", slave_name);
        int tty = open("/dev/tty", O_RDWR);
        CHECK(tty >= 0, "C: open /dev/tty (its controlling terminal): %s", strerror(errno));
        close(tty);
        FILE *f = fopen("/proc/self/stat", "r");
        CHECK(f != NULL, "C: /proc/self/stat: %s", strerror(errno));
        int tty_nr = 0;
        CHECK(fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %d", &tty_nr) == 1, "C: /proc/self/stat unreadable");
        fclose(f);
        CHECK((dev_t)tty_nr == st.st_rdev, "C: tty_nr %x, expected %lx", tty_nr, (unsigned long)st.st_rdev);
        check_termios(0, "C");
        int status;
        pid_t w = waitpid(g, &status, WNOHANG);
        CHECK(w >= 0, "C: waitpid: %s", strerror(errno));
        if (w == g) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status));
        usleep(20000);
    }
}

static long acked;
static char pending[256];
static size_t pending_len;

/* P: the acks waiting on the master, each once and in order. */
static void read_acks(int m)
{
    for (;;) {
        struct pollfd p = { m, POLLIN, 0 };
        if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return;
        ssize_t n = read(m, pending + pending_len, sizeof pending - 1 - pending_len);
        if (n <= 0) return;
        pending_len += (size_t)n;
        char *nl;
        while ((nl = memchr(pending, '\n', pending_len)) != NULL) {
            *nl = 0;
            long k;
            CHECK(sscanf(pending, "ack %ld\r", &k) == 1 && nl > pending && nl[-1] == '\r' && k == acked + 1,
                  "P: got '%s', expected 'ack %ld\\r'", pending, acked + 1);
            acked = k;
            size_t used = (size_t)(nl + 1 - pending);
            memmove(pending, nl + 1, pending_len - used);
            pending_len -= used;
        }
        CHECK(pending_len < sizeof pending - 1, "P: a line too long");
    }
}

static void check_master(int m, pid_t c)
{
    const char *name = ptsname(m);
    CHECK(name && strcmp(name, slave_name) == 0, "P: ptsname %s, expected %s", name ? name : "(none)", slave_name);
    struct winsize ws;
    CHECK(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_row == ROWS && ws.ws_col == COLS, "P: window %dx%d, expected %dx%d", ws.ws_row, ws.ws_col, ROWS, COLS);
    check_termios(m, "P");
    pid_t sid = 0, fg = 0;
    CHECK(ioctl(m, TIOCGSID, &sid) == 0 && sid == c, "P: the terminal's session %d, expected %d", sid, c);
    CHECK(ioctl(m, TIOCGPGRP, &fg) == 0 && fg != c && fg > 0, "P: foreground group %d (C is %d)", fg, c);
}

int main(int argc, char **argv)
{
    if (argc < 2) FAIL("usage: pty <workdir>");
    snprintf(stop_path, sizeof stop_path, "%s/stop", argv[1]);
    snprintf(hold_path, sizeof hold_path, "%s/hold", argv[1]);
    snprintf(hold2_path, sizeof hold2_path, "%s/hold2", argv[1]);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "posix_openpt: %s", strerror(errno));
    snprintf(slave_name, sizeof slave_name, "%s", ptsname(m));
    struct winsize ws = { ROWS, COLS, 0, 0 };
    CHECK(ioctl(m, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ: %s", strerror(errno));
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe: %s", strerror(errno));
    pid_t c = fork();
    CHECK(c >= 0, "fork: %s", strerror(errno));
    if (c == 0) {
        close(m);
        close(ready[0]);
        lead(ready[1]);
    }
    close(ready[1]);
    char b;
    CHECK(read(ready[0], &b, 1) == 1, "P: C did not get ready");
    close(ready[0]);
    say("READY");
    long sent = 0;
    for (long n = 1;; n++) {
        if (access(stop_path, F_OK) == 0) {
            check_master(m, c);
            for (int i = 0; i < 200 && acked < sent; i++) {
                read_acks(m);
                usleep(10000);
            }
            CHECK(acked == sent, "P: %ld acks of %ld seqs", acked, sent);
            CHECK(write(m, "quit\n", 5) == 5, "P: write quit: %s", strerror(errno));
            int status;
            CHECK(waitpid(c, &status, 0) == c, "P: waitpid: %s", strerror(errno));
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "P: C ended with status %x", status);
            say("PASS %ld", n - 1);
            return 0;
        }
        check_master(m, c);
        int hold = access(hold_path, F_OK) == 0;
        if (!hold || sent - acked < 12) {
            char line[64];
            int len = snprintf(line, sizeof line, "seq %ld\n", ++sent);
            CHECK(write(m, line, (size_t)len) == len, "P: write to the master: %s", strerror(errno));
        }
        if (n % 2 == 0 && !hold) read_acks(m);
        CHECK(acked <= sent, "P: %ld acks of %ld seqs", acked, sent);
        say("tick %ld acks=%ld", n, acked);
        tick_sleep();
    }
}
