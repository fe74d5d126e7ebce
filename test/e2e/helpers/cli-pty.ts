// Owns driving `castle` on a real pseudo-terminal for the CLI e2e tests: util-linux `script`
// makes the pty (started as the unprivileged user, so the pty is theirs), the test reads what
// the terminal shows and types into it. Skips with a reason when `script` is missing.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { dirname, join } from "node:path";
import { IS_ROOT, NOBODY, visible, type CliHome } from "./cli-harness";

/** Why pty tests cannot run here, or undefined. */
export function scriptMissing(): string | undefined {
  try {
    return execFileSync("script", ["--version"], { encoding: "utf8" }).includes("util-linux") ? undefined : "`script` is not util-linux's";
  } catch {
    return "`script` (util-linux) is not installed";
  }
}

export function shellQuote(word: string): string {
  return /^[\w./=:@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface PtyOptions {
  env?: Record<string, string | undefined>;
  rows?: number;
  columns?: number;
  /** Shell commands run on the pty before castle, and after it (once `exit=` is printed). */
  before?: string;
  after?: string;
  /** A command castle's stdout is piped into (castle then has no terminal on stdout). */
  pipeTo?: string;
  /** Start the `castle` bin itself (the native launcher) instead of node on castle.cjs. */
  bin?: boolean;
  /** Run this argv instead of `node castle args...` (e.g. a baseline to compare start-up with). */
  program?: string[];
}

/** `castle args...` on a fresh pty of rows × columns; `exit=<status>` is printed when it ends. */
export class Terminal {
  output = "";
  /** When the terminal was started, and when each piece of its output arrived (Date.now()). */
  readonly startedAt = Date.now();
  readonly chunks: { at: number; text: string }[] = [];
  readonly proc: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;

  constructor(home: CliHome, args: string[], options: PtyOptions = {}) {
    const start = options.bin ? [join(dirname(home.world.castle), "castle")] : [process.execPath, home.world.castle];
    const castle = (options.program ?? [...start, ...args]).map(shellQuote).join(" ");
    const command =
      `stty rows ${options.rows ?? 30} cols ${options.columns ?? 100}; ${options.before ?? ":"}; ` +
      `${castle}${options.pipeTo ? ` | ${options.pipeTo}` : ""}; echo "exit=$?"; ${options.after ?? ":"}`;
    const scriptArgs = ["-qfec", command, "/dev/null"];
    const [file, argv] = IS_ROOT && !home.caller
      ? ["setpriv", [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, "--clear-groups", "script", ...scriptArgs]]
      : ["script", scriptArgs];
    this.proc = spawn(file, argv, {
      cwd: home.world.base,
      env: home.env({ TERM: "xterm-256color", CI: undefined, CONTINUOUS_INTEGRATION: undefined, ...options.env }),
    });
    const take = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      this.output += text;
      this.chunks.push({ at: Date.now(), text });
    };
    this.proc.stdout.on("data", take);
    this.proc.stderr.on("data", take);
    this.exited = new Promise((resolve) => this.proc.on("close", (code) => resolve(code)));
  }

  /** What the terminal printed, escape sequences removed. */
  get text(): string {
    return visible(this.output);
  }

  type(text: string): void {
    this.proc.stdin.write(text);
  }

  /** Waits until the visible text after offset `from` matches; returns the offset after the match. */
  async expect(pattern: RegExp, from = 0, ms = 15_000): Promise<number> {
    for (let waited = 0; ; waited += 25) {
      const text = this.text;
      const match = pattern.exec(text.slice(from));
      if (match) return from + match.index + match[0].length;
      if (waited >= ms) throw new Error(`timed out waiting for ${pattern}; the terminal shows:\n${text}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for the command to end; returns the status it printed. */
  async status(ms = 30_000): Promise<number> {
    const at = await this.expect(/exit=(\d+)/, 0, ms);
    const m = /exit=(\d+)/.exec(this.text.slice(0, at));
    this.proc.stdin.end();
    await this.exited;
    return Number(m![1]);
  }

  kill(): void {
    this.proc.kill("SIGKILL");
  }
}
