// Owns the git repositories the CLI e2e tests fetch definitions from: made and committed with
// the real git command (fixed identity and dates), readable by the unprivileged user.

import { execFileSync } from "node:child_process";

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Castle Tests",
  GIT_AUTHOR_EMAIL: "tests@castle.invalid",
  GIT_COMMITTER_NAME: "Castle Tests",
  GIT_COMMITTER_EMAIL: "tests@castle.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

/** Runs git in dir; returns its trimmed stdout. */
export function git(dir: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd: dir, env: GIT_ENV, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** A new repository in dir whose first branch is `main`. */
export function initRepo(dir: string): void {
  git(dir, "init", "-q", "-b", "main");
}

/** Commits everything in the work tree; returns the commit id. */
export function commitAll(dir: string, message: string): string {
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", message);
  execFileSync("chmod", ["-R", "a+rX", dir]);
  return git(dir, "rev-parse", "HEAD");
}
