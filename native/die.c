/* die.c: the error family of die.h: format one line (control characters flattened, so a quoted
 * path cannot break it), print it with one write(2), report it, _exit. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "die.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *program = "castle";
static int default_code = 1;
static void (*reporter)(int code, const char *reason, const char *message);
static void (*cleanup_fn)(void);

void die_program(const char *name, int code) {
  program = name;
  default_code = code;
}

void die_report_to(void (*report)(int, const char *, const char *)) {
  reporter = report;
}

void die_set_cleanup(void (*cleanup)(void)) {
  cleanup_fn = cleanup;
}

static void format_message(char *buf, size_t size, int err, const char *hint, const char *fmt,
                           va_list ap) PRINTF(5, 0);
static void format_message(char *buf, size_t size, int err, const char *hint, const char *fmt,
                           va_list ap) {
  int n = vsnprintf(buf, size, fmt, ap);
  size_t used = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
  if (err != 0 && used < size) {
    n = snprintf(buf + used, size - used, ": %s", strerror(err));
    used = n < 0 ? used : used + (size_t)n < size ? used + (size_t)n : size - 1;
  }
  if (hint != NULL && used < size) snprintf(buf + used, size - used, " (hint: %s)", hint);
  /* Messages quote paths and spec strings, which may hold any byte but NUL: one line stays one. */
  for (char *s = buf; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

static void print_line(const char *message) {
  char line[1100];
  int n = snprintf(line, sizeof line, "%s: %s\n", program, message);
  if (n > 0) (void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line);
}

static NORETURN void vdie(int code, const char *reason, int err, const char *hint, const char *fmt,
                          va_list ap) PRINTF(5, 0);
static NORETURN void vdie(int code, const char *reason, int err, const char *hint, const char *fmt,
                          va_list ap) {
  char message[1024];
  format_message(message, sizeof message, err, hint, fmt, ap);
  if (cleanup_fn != NULL) cleanup_fn();
  print_line(message);
  if (reporter != NULL) reporter(code, reason, message);
  _exit(code);
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(default_code, NULL, 0, NULL, fmt, ap);
}

void die_errno(const char *fmt, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  vdie(default_code, NULL, err, NULL, fmt, ap);
}

void die_hint(int err, const char *hint, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(default_code, NULL, err, hint, fmt, ap);
}

void die_code(int code, int err, const char *hint, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(code, NULL, err, hint, fmt, ap);
}

void die_reason(const char *reason, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(default_code, reason, err, NULL, fmt, ap);
}

void warn(const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  format_message(message, sizeof message, 0, NULL, fmt, ap);
  va_end(ap);
  print_line(message);
}
