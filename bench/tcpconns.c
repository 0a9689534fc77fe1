/* tcpconns: one process holding N established loopback TCP connections (N/2 pairs, both ends in
 * the process), each end with a few KiB written that the other has not read, for the benchmark of
 * checkpointing connections. "tcpconns N": prints READY once every connection is made and loaded,
 * then idles (poll on nothing) until killed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    struct rlimit r = {n + 64, n + 64};
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) { perror("setrlimit"); return 1; }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128) || getsockname(l, (struct sockaddr *)&a, &al)) { perror("listen"); return 1; }
    char block[4096];
    memset(block, 'a', sizeof block);
    for (int i = 0; i < n / 2; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
        int s = accept(l, NULL, NULL);
        if (s < 0) { perror("accept"); return 1; }
        if (write(c, block, sizeof block) != sizeof block || write(s, block, sizeof block) != sizeof block) { perror("write"); return 1; }
    }
    close(l);
    printf("READY\n");
    fflush(stdout);
    for (;;)
        poll(NULL, 0, 1000);
}
