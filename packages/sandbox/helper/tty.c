/* tty.c: the `tty` op. The monitor puts the caller's terminal in raw mode (and restores it on
 * every exit path it controls); init opens a pty from the sandbox's own devpts instance and
 * relays bytes between the caller's stdin/stdout and the master; the command makes the slave
 * its controlling terminal, so the line discipline inside does echo, ^C, ^Z and job control.
 * The caller's terminal is never handed to the command: TIOCSTI from inside reaches the inner
 * pty at most (and seccomp refuses it anyway). */
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "kabi.h"
#include "sandbox.h"

static struct termios saved_termios;
static bool termios_saved;

void tty_restore_caller(void) {
  if (termios_saved && tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios) < 0)
    warn("restore the terminal mode: %s", strerror(errno));
  termios_saved = false;
}

void tty_raw_caller(void) {
  if (!isatty(STDIN_FILENO)) return;
  if (tcgetattr(STDIN_FILENO, &saved_termios) < 0) die_errno("tcgetattr stdin");
  struct termios raw = saved_termios;
  cfmakeraw(&raw);
  termios_saved = true;
  die_set_cleanup(tty_restore_caller);
  if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0) die_errno("put the terminal in raw mode");
}

int tty_open_master(void) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die_errno("open /dev/ptmx in the sandbox");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) die_errno("unlock the pty");
  return master;
}

void tty_copy_winsize(int master) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
    return; /* the caller has no terminal: keep the pty's default size */
  if (ioctl(master, TIOCSWINSZ, &ws) < 0) warn("set the pty window size: %s", strerror(errno));
}

/* Opens the slave side of master (init keeps one open so the master never reports a hangup
 * before the command has opened its own). */
int tty_open_slave(int master) {
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave >= 0) return slave;
  unsigned n;
  char name[32];
  if (ioctl(master, TIOCGPTN, &n) < 0) die_errno("find the pty slave");
  snprintf(name, sizeof name, "/dev/pts/%u", n);
  slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) die_errno("open %s", name);
  return slave;
}

/* In the command, after setsid(): the slave becomes the controlling terminal and stdio. */
void tty_make_controlling(int master) {
  int slave = tty_open_slave(master);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) die_errno("make the pty the controlling terminal");
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(slave, fd) < 0) die_errno("dup2 the pty to fd %d", fd);
  close(slave);
  close(master);
}

/* ---- relay (init) ---- */

struct tty_relay {
  int master;
  bool in_open, master_open;
  char to_master[4096];
  size_t pending, offset;
};

struct tty_relay *tty_relay_new(int master) {
  struct tty_relay *r = xcalloc(1, sizeof *r);
  r->master = master;
  r->in_open = true;
  r->master_open = true;
  int flags = fcntl(master, F_GETFL);
  if (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) < 0)
    die_errno("make the pty master non-blocking");
  return r;
}

/* Fills up to 2 pollfds: the caller's stdin (when there is room for more input) and the
 * master (for output, and for writability while input is pending). */
int tty_relay_poll_fds(struct tty_relay *r, struct pollfd *fds, int max) {
  int n = 0;
  if (max < 2) return 0;
  if (r->in_open && r->pending == 0) fds[n++] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
  short events = (short)((r->master_open ? POLLIN : 0) | (r->pending > 0 ? POLLOUT : 0));
  if (events != 0) fds[n++] = (struct pollfd){r->master, events, 0};
  return n;
}

static void copy_out(struct tty_relay *r) {
  char buf[8192];
  for (;;) {
    ssize_t n = read(r->master, buf, sizeof buf);
    if (n > 0) {
      if (!write_all(STDOUT_FILENO, buf, (size_t)n)) {
        r->master_open = false; /* the caller's stdout is gone */
        return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    r->master_open = false; /* EIO: every slave fd is closed */
    return;
  }
}

static void copy_in(struct tty_relay *r) {
  while (r->pending > r->offset) {
    ssize_t n = write(r->master, r->to_master + r->offset, r->pending - r->offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      r->pending = r->offset = 0;
      return;
    }
    r->offset += (size_t)n;
  }
  r->pending = r->offset = 0;
}

void tty_relay_handle(struct tty_relay *r, struct pollfd *fds, int n) {
  for (int i = 0; i < n; i++) {
    if (fds[i].revents == 0) continue;
    if (fds[i].fd == STDIN_FILENO) {
      ssize_t got = read(STDIN_FILENO, r->to_master, sizeof r->to_master);
      if (got > 0) {
        r->pending = (size_t)got;
        r->offset = 0;
        copy_in(r);
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        r->in_open = false; /* the caller's input ended */
      }
    } else {
      if (fds[i].revents & POLLOUT) copy_in(r);
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) copy_out(r);
    }
  }
}

/* After the command exited: whatever it wrote last is still in the master. */
void tty_relay_drain(struct tty_relay *r) {
  if (r->master_open) copy_out(r);
}
