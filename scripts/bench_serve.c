/* Issue 13 bench helper: "hold N" opens N fds (dups of /dev/null) and sleeps until killed;
 * "loop REPS" runs the bare baseline of fdiff serve's host pass: for every /proc/PID, one
 * stat("/proc/PID/fd") (st_size is the fd count) and one read of /proc/PID/stat, REPS times,
 * and prints the median pass in milliseconds. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "hold") == 0) {
    int n = atoi(argv[2]);
    int fd = open("/dev/null", O_RDONLY);
    for (int i = 1; i < n; i++) dup(fd);
    for (;;) pause();
  }
  if (argc != 3 || strcmp(argv[1], "loop") != 0) {
    fprintf(stderr, "usage: bench_serve hold N | loop REPS\n");
    return 2;
  }
  int reps = atoi(argv[2]);
  double *t = calloc(reps, sizeof *t);
  char path[64], buf[1024];
  long procs = 0, fds = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now_ms();
    procs = fds = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
      int f = open(path, O_RDONLY);
      if (f < 0) continue;
      ssize_t n = read(f, buf, sizeof buf);
      close(f);
      if (n <= 0) continue;
      struct stat st;
      snprintf(path, sizeof path, "/proc/%s/fd", e->d_name);
      if (stat(path, &st) == 0) {
        procs++;
        fds += st.st_size;
      }
    }
    closedir(d);
    t[r] = now_ms() - t0;
  }
  qsort(t, reps, sizeof *t, cmp);
  printf("%.3f %ld %ld\n", t[reps / 2], procs, fds);
  return 0;
}
