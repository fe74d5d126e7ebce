// Owns the environment Castle was started with, before it sets variables of its own (where its
// helper programs are, see main.ts): what the native launcher sees, and so what a fast-path
// entry must compare (fastpath/record-run.ts).

let launched: Readonly<NodeJS.ProcessEnv> | undefined;

/** Called first thing by the command's entry. */
export function rememberLaunchEnv(env: NodeJS.ProcessEnv = process.env): void {
  launched ??= Object.freeze({ ...env });
}

/** The environment as launched (the current one when nothing was remembered: tests, tsx). */
export function launchEnv(): Readonly<NodeJS.ProcessEnv> {
  return launched ?? process.env;
}
