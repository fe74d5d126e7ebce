// Owns passing signals sent to `castle run`/`exec` on to the system's command, as `docker run`
// does: `kill -INT <castle>`, `timeout -s INT`, a supervisor's TERM or HUP all reach the
// command, and Castle stays to report its exit status. (A terminal's Ctrl-C reaches only Castle
// too: without a tty the sandbox leaves Castle's process group; with one, keys travel through
// the sandbox's own pty and raise the signal inside.) SIGUSR1 is Node's debugger's; SIGKILL and
// SIGSTOP cannot be caught.

const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR2"];

/** Forwards signals to `target` until the returned function is called. */
export function forwardSignals(target: { kill(signal: NodeJS.Signals): unknown }): () => void {
  const forward = (signal: NodeJS.Signals) => {
    target.kill(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  return () => {
    for (const signal of FORWARDED) process.off(signal, forward);
  };
}
