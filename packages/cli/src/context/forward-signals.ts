// Owns passing signals sent to `castle run`/`exec` on to the system's command, as `docker run`
// does: `kill -INT <castle>`, `timeout -s INT`, a supervisor's TERM or HUP all reach the
// command, and Castle stays to report its exit status. (A terminal's Ctrl-C reaches only Castle
// too: without a tty the sandbox leaves Castle's process group; with one, keys travel through
// the sandbox's own pty and raise the signal inside.) SIGUSR1 is Node's debugger's; SIGKILL and
// SIGSTOP cannot be caught.

/** Also what the fast path passes on (fastpath/record-run.ts records it in each entry). */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR2"];

/** Forwards signals to `target` until the returned function is called. */
export function forwardSignals(target: { kill(signal: NodeJS.Signals): unknown }): () => void {
  const forward = (signal: NodeJS.Signals) => {
    target.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  return () => {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  };
}
