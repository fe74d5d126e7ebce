// Test helper: a small project directory with the things ignores care about (.git, *.o, build
// output), an executable, a relative and a dangling absolute symlink.

import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function writeProject(dir: string): void {
  mkdirSync(join(dir, "src/obj"), { recursive: true });
  mkdirSync(join(dir, ".git/objects"), { recursive: true });
  mkdirSync(join(dir, "build/out"), { recursive: true });
  writeFileSync(join(dir, "src/main.c"), "int main(void) { return 0; }\n");
  writeFileSync(join(dir, "src/main.o"), "object");
  writeFileSync(join(dir, "src/obj/x.o"), "object");
  writeFileSync(join(dir, ".git/HEAD"), "ref: refs/heads/main\n");
  writeFileSync(join(dir, "build/out/a"), "out");
  writeFileSync(join(dir, "build/keep"), "keep");
  writeFileSync(join(dir, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
  chmodSync(join(dir, "run.sh"), 0o755);
  symlinkSync("src/main.c", join(dir, "main-link"));
  symlinkSync("/nonexistent/absolute", join(dir, "dangling"));
}
