/* castle-treeutil's commands that live outside treeutil.c. */
#ifndef CASTLE_TREEUTIL_H
#define CASTLE_TREEUTIL_H

/* Prints "castle-treeutil: <message>" on stderr and exits with code (treeutil.c). */
__attribute__((noreturn, format(printf, 2, 3))) void die_with(int code, const char *fmt, ...);

/* Runs the long-lived helper loop on stdin/stdout until stdin closes (serve.c). */
void serve(void);

/* Writes the tar of the tree at root to stdout, as pack.ts's writeTar would (pack.c). */
void pack_tree(const char *root);

/* Whether a directory is marked opaque in an overlay upper (user. or trusted. xattr): the open
 * directory fd when fd >= 0, else path, not following a symlink (treeutil.c). */
int is_opaque(int fd, const char *path);

#endif
