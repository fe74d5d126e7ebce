/* common.h: the small helpers Castle's C programs share (castle-sandbox, the castle launcher):
 * allocation that dies on failure (die.h), a write that finishes, a strict decimal parse, a JSON
 * string body, and cleanup attributes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "die.h"

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);

/* Loops over short writes and EINTR; false on error (errno set). */
bool write_all(int fd, const void *buf, size_t len);
/* Strict decimal parse; false unless the whole string is a number <= max. */
bool parse_u64(const char *s, uint64_t max, uint64_t *out);
/* The JSON string body of s (no quotes) into out, cut to fit; false when it was cut. */
bool json_escape(char *out, size_t size, const char *s);

/* Cleanup attributes: the fd / buffer is released when the variable leaves scope. */
void closep(int *fd);
void freep(void *ptr);
#define autoclose __attribute__((cleanup(closep)))
#define autofree __attribute__((cleanup(freep)))
