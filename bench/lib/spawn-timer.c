/* spawn-timer: times commands run back to back, interleaved run by run, with no Node in the
 * loop. Usage: spawn-timer RUNS SPECFILE -- CMD1 ARGS... -- CMD2 ARGS... [-- ...]
 * The first separator names the separator: `spawn-timer RUNS SPECFILE :: castle run d -- x :: …`
 * times commands whose own arguments hold "--".
 * Each run of each command: fork, open SPECFILE on fd 3 in the child (castle-sandbox reads its
 * spec there; other commands ignore it), exec, wait for exit. Prints one JSON line with the
 * median wall time per command in milliseconds, and how many runs failed. Used by
 * bench/sandbox-spawn.ts. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: spawn-timer RUNS SPECFILE -- CMD... [-- CMD...] (or :: instead of --)\n");
    return 2;
  }
  int runs = atoi(argv[1]);
  const char *spec = argv[2];
  char **cmds[16];
  int ncmds = 0;
  const char *sep = argv[3];
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], sep) == 0) {
      argv[i] = NULL;
      if (i + 1 < argc && ncmds < 16) cmds[ncmds++] = &argv[i + 1];
    }
  }
  double *times = calloc((size_t)(runs * ncmds), sizeof *times);
  int failed[16] = {0};
  for (int r = 0; r < runs; r++) {
    for (int c = 0; c < ncmds; c++) {
      double t0 = now_ms();
      pid_t pid = fork();
      if (pid == 0) {
        int fd = open(spec, O_RDONLY);
        if (fd >= 0 && fd != 3) {
          dup2(fd, 3);
          close(fd);
        }
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execv(cmds[c][0], cmds[c]);
        _exit(127);
      }
      int status;
      waitpid(pid, &status, 0);
      times[c * runs + r] = now_ms() - t0;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed[c]++;
    }
  }
  printf("{\"medians\":[");
  for (int c = 0; c < ncmds; c++) {
    qsort(times + c * runs, (size_t)runs, sizeof *times, cmp);
    printf("%s%.3f", c ? "," : "", times[c * runs + runs / 2]);
  }
  printf("],\"failed\":[");
  for (int c = 0; c < ncmds; c++) printf("%s%d", c ? "," : "", failed[c]);
  printf("]}\n");
  return 0;
}
