/* die.h: the one error family of Castle's C programs (castle-sandbox, castle-treeutil): every
 * failure prints one line on stderr, "<program>: <what>[: <strerror>][ (hint: <hint>)]", and
 * exits with a code. A program names itself and its usual exit code once (die_program); it may
 * also report each error elsewhere (die_report_to: castle-sandbox writes it to its status fd) and
 * run a clean-up first (die_set_cleanup: castle-sandbox restores the caller's terminal). */
#pragma once

#include <stdarg.h>

#define NORETURN __attribute__((noreturn))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* The name printed before every message, and the exit code of die() and friends. */
void die_program(const char *name, int code);
/* Called with each error after it was printed, before the exit (reason may be NULL). */
void die_report_to(void (*report)(int code, const char *reason, const char *message));
/* Called before the error is printed. */
void die_set_cleanup(void (*cleanup)(void));

NORETURN void die(const char *fmt, ...) PRINTF(1, 2);
/* Appends strerror(errno), errno as it was when called. */
NORETURN void die_errno(const char *fmt, ...) PRINTF(1, 2);
NORETURN void die_hint(int err, const char *hint, const char *fmt, ...) PRINTF(3, 4);
NORETURN void die_code(int code, int err, const char *hint, const char *fmt, ...) PRINTF(4, 5);
/* A failure the caller tells apart by a stable word (reported, not printed). */
NORETURN void die_reason(const char *reason, int err, const char *fmt, ...) PRINTF(3, 4);
/* Prints "<program>: <what>" without exiting (for best-effort steps). */
void warn(const char *fmt, ...) PRINTF(1, 2);
