// Owns `castle shell`: `castle run` with a login shell instead of the entrypoint.

import { main as run } from "./run";

export function main(argv: string[]): Promise<number> {
  return run(argv, true);
}
