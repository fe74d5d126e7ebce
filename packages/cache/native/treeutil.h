/* castle-treeutil's commands that live outside treeutil.c. */
#ifndef CASTLE_TREEUTIL_H
#define CASTLE_TREEUTIL_H

/* Errors: the die family shared by Castle's C programs ("castle-treeutil: <message>", exit 1). */
#include "die.h"

/* Runs the long-lived helper loop on stdin/stdout until stdin closes (serve.c). */
void serve(void);

/* Writes the tar of the tree at root to stdout, as pack.ts's writeTar would (pack.c). */
void pack_tree(const char *root);

/* Whether a directory is marked opaque in an overlay upper (user. or trusted. xattr): the open
 * directory fd when fd >= 0, else path, not following a symlink (treeutil.c). */
int is_opaque(int fd, const char *path);

#endif
