/* issue 12's C leaker: leaky_path() keeps every fd, healthy_path() closes it, both through
   the shared library's lib_open(); also a leaked socket() and pipe2(), and a thread. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int lib_open(const char *path);

static const char *path;
static int mode_threads;

__attribute__((noinline)) void leaky_path(void) {
    int fd = lib_open(path);
    if (fd < 0) exit(9);
}

__attribute__((noinline)) void healthy_path(void) {
    int fd = lib_open(path);
    if (fd >= 0) close(fd);
}

__attribute__((noinline)) void leaky_socket(void) {
    if (socket(AF_INET, SOCK_STREAM, 0) < 0) exit(9);
}

__attribute__((noinline)) void leaky_pipe(void) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) exit(9);
}

static void *thread_main(void *arg) {
    (void)arg;
    for (;;) {
        leaky_path();
        for (int i = 0; i < 4; i++) healthy_path();
        usleep(20000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    path = argv[1];
    int secs = atoi(argv[2]);
    const char *what = argc > 3 ? argv[3] : "files";
    mode_threads = strcmp(what, "thread") == 0;
    if (mode_threads) {
        pthread_t t;
        pthread_create(&t, NULL, thread_main, NULL);
        sleep(secs);
        return 0;
    }
    for (int n = 0; n < secs * 50; n++) {
        if (strcmp(what, "socket") == 0) leaky_socket();
        else if (strcmp(what, "pipe") == 0) leaky_pipe();
        else leaky_path();
        for (int i = 0; i < 4; i++) healthy_path();
        usleep(20000);
    }
    if (strcmp(what, "exec") == 0) execl("/bin/true", "true", (char *)NULL);
    return 0;
}
