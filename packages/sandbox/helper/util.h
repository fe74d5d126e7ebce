/* util.h: what every part of castle-sandbox shares: exit codes, the report that init and the
 * command send to the monitor, where errors of the shared die family (native/die.h) are
 * reported, die_mount, cleanup attributes and small checked I/O helpers. */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "die.h"
#include "common.h"

#define CASTLE_VERSION "0.1.0"

/* Exit codes, shell convention: 125 setup failed, 126 not executable, 127 not found. */
#define EXIT_SETUP 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127

#define UNUSED __attribute__((unused))
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* What init and the command tell the monitor, one fixed-size record per write (atomic: it is
 * smaller than PIPE_BUF, and init's channel to the monitor is a SOCK_SEQPACKET socketpair). The
 * monitor turns them into JSON status lines. REPORT_NAMESPACES carries init's namespace fds
 * (SCM_RIGHTS; `code` has bit k set for kind k, see enter.c) for `enter`. */
enum report_type { REPORT_ERROR = 1, REPORT_STARTED = 2, REPORT_EXIT = 3, REPORT_NAMESPACES = 4 };
#define REPORT_TMP_FULL 1  /* REPORT_EXIT flags: the command failed with /tmp full */
#define REPORT_PIDS_FULL 2 /* ... or with as many tasks as its RLIMIT_NPROC allows */
struct report {
  int32_t type;
  int32_t code;   /* exit code: the error's (125..127) or the command's (incl. 128+signal) */
  int32_t signal; /* REPORT_EXIT: the signal that killed the command, else 0 */
  int32_t pid;    /* REPORT_STARTED: the command's pid as its parent sees it */
  int32_t flags;  /* REPORT_EXIT: REPORT_TMP_FULL, REPORT_PIDS_FULL */
  char overlay[8];  /* REPORT_STARTED: "kernel" or "fuse" */
  char reason[24];  /* REPORT_ERROR: a stable word for a failure the caller tells apart, or "" */
  char message[488]; /* REPORT_ERROR: "<what>: <why>" without the program name */
};

/* Where an error goes besides stderr (through die_report_to): the monitor writes a JSON line to
 * the status fd, init and the command write a struct report to the monitor (or to init). */
void die_sink_status(int fd);
void die_sink_report(int fd);

/* A failed mount(2): names what was mounted where and adds a hint for the usual causes. */
NORETURN void die_mount(const char *fstype, const char *source, const char *target);

/* Status JSON lines, written by the monitor only. */
/* overlay NULL and command_pid 0 are left out of the line. */
void status_started(int fd, pid_t init_pid, const char *overlay, pid_t command_pid);
/* flags: REPORT_TMP_FULL adds "tmpFull":true, REPORT_PIDS_FULL "pidsFull":true. */
void status_exit(int fd, int code, int signal, int flags);
/* reason NULL or "" is left out of the line. */
void status_error(int fd, int code, const char *message, const char *reason);
const char *signal_name(int sig);



/* Reads the whole fd up to max bytes into a NUL-terminated buffer; dies on error or overflow. */
char *read_fd_all(int fd, size_t max, size_t *len, const char *what);
/* Writes content to an existing file (e.g. /proc/self/uid_map); dies naming the path. */
void write_file(const char *path, const char *content);
void set_cloexec(int fd);
/* Closes every fd >= 3 except those listed (fast path: close_range). */
void close_fds_except(const int *keep, size_t n);
