/* duo: two independent programs of one group that talk through a named FIFO and a unix socket.
 * "duo server WORKDIR": makes <wd>/fifo and listens on <wd>/sock; accepts one client.
 * "duo client WORKDIR": connects to <wd>/sock and opens <wd>/fifo for writing.
 * Each writes its own log (<wd>/server.log, <wd>/client.log), READY, then "tick <n>" lines.
 * Every tick the client writes "seq <n>\n" into the FIFO and waits on the socket for "ack <n>\n";
 * the server reads the FIFO, checks the sequence (no gap, no repeat) and answers on the socket.
 * A sequence number out of order on either side is a FAIL; the other side gone (end of file) ends the
 * program with status 2 ("client gone", "server gone"). On <wd>/stop both check their counts
 * and print PASS <n>: the client first sends "end\n", which the server takes as its cue.
 * The client also keeps a heap block with a running checksum, checked every tick.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "target.h"

static char wd[3000];

static void path_of(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", wd, name); }

static struct sockaddr_un sock_address(void)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(wd) + 6 >= sizeof a.sun_path)
        FAIL("work directory too long for a unix socket path: %s", wd);
    memcpy(a.sun_path, wd, strlen(wd));
    memcpy(a.sun_path + strlen(wd), "/sock", 6);
    return a;
}

static void own_log(const char *name)
{
    char p[3100];
    path_of(p, sizeof p, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(3);
    close(fd);
}

/* Reads one '\n'-terminated line (at most size-1 bytes) from fd, byte by byte: nothing is left in a buffer. */
static int read_line(int fd, char *line, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            return -1;
        if (line[n] == '\n') {
            line[n] = 0;
            return (int)n;
        }
        n++;
    }
    return -1;
}

static int server(void)
{
    own_log("server.log");
    char fifo[3100];
    path_of(fifo, sizeof fifo, "fifo");
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0)
        FAIL("mkfifo: %s", strerror(errno));
    struct sockaddr_un a = sock_address();
    unlink(a.sun_path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 1) != 0)
        FAIL("listen: %s", strerror(errno));
    say("READY");
    int conn = accept(listener, NULL, NULL);
    if (conn < 0)
        FAIL("accept: %s", strerror(errno));
    int in = open(fifo, O_RDONLY);
    if (in < 0)
        FAIL("open fifo: %s", strerror(errno));
    for (long expect = 1;; expect++) {
        char line[64];
        if (read_line(in, line, sizeof line) < 0) {
            say("client gone at %ld", expect); /* not a FAIL: its own state is fine */
            exit(2);
        }
        if (strcmp(line, "end") == 0) {
            say("PASS %ld", expect - 1);
            return 0;
        }
        long got = strtol(line + 4, NULL, 10);
        if (strncmp(line, "seq ", 4) != 0 || got != expect)
            FAIL("fifo: expected seq %ld, got '%s'", expect, line);
        char ack[64];
        int len = snprintf(ack, sizeof ack, "ack %ld\n", got);
        if (write(conn, ack, len) != len)
            FAIL("socket write: %s", strerror(errno));
        say("tick %ld", got);
    }
}

static int client(void)
{
    own_log("client.log");
    char fifo[3100], stop[3100];
    path_of(fifo, sizeof fifo, "fifo");
    path_of(stop, sizeof stop, "stop");
    struct sockaddr_un a = sock_address();
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        FAIL("connect: %s", strerror(errno));
    int out = open(fifo, O_WRONLY);
    if (out < 0)
        FAIL("open fifo: %s", strerror(errno));
    size_t words = 1 << 18; /* 2 MiB of state whose checksum must carry on */
    uint64_t *heap = malloc(words * sizeof *heap), sum = 0;
    for (size_t i = 0; i < words; i++)
        sum += heap[i] = i * 2654435761u;
    say("READY");
    for (long n = 1;; n++) {
        if (access(stop, F_OK) == 0) {
            if (write(out, "end\n", 4) != 4)
                FAIL("fifo write: %s", strerror(errno));
            uint64_t check = 0;
            for (size_t i = 0; i < words; i++)
                check += heap[i];
            if (check != sum)
                FAIL("heap checksum %lx, expected %lx", (unsigned long)check, (unsigned long)sum);
            say("PASS %ld", n - 1);
            return 0;
        }
        char line[64];
        int len = snprintf(line, sizeof line, "seq %ld\n", n);
        if (write(out, line, len) != len)
            FAIL("fifo write: %s", strerror(errno));
        if (read_line(s, line, sizeof line) < 0) {
            say("server gone at %ld", n);
            exit(2);
        }
        long got = strtol(line + 4, NULL, 10);
        if (strncmp(line, "ack ", 4) != 0 || got != n)
            FAIL("socket: expected ack %ld, got '%s'", n, line);
        size_t at = (size_t)n * 7919 % words;
        sum -= heap[at];
        heap[at] += (uint64_t)n;
        sum += heap[at];
        say("tick %ld", n);
        tick_sleep();
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        FAIL("usage: duo server|client WORKDIR");
    snprintf(wd, sizeof wd, "%s", argv[2]);
    if (strcmp(argv[1], "server") == 0)
        return server();
    if (strcmp(argv[1], "client") == 0)
        return client();
    FAIL("usage: duo server|client WORKDIR");
}
