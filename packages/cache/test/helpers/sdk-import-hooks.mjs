// Module hooks for remote-s3-client.test.ts: report every import of an AWS SDK package on stderr,
// so a test can tell whether the SDK was loaded.
import { register } from "node:module";

if (!process.env.CASTLE_HOOKS_REGISTERED) {
  process.env.CASTLE_HOOKS_REGISTERED = "1";
  register(import.meta.url);
}

export async function resolve(specifier, context, next) {
  if (specifier.startsWith("@aws-sdk/")) process.stderr.write(`SDK-IMPORT ${specifier}\n`);
  return next(specifier, context);
}
