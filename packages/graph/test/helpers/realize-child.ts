// Test helper: realizes one http source in its own process and prints the digest, so tests can
// race two processes on one store. Usage: realize-child.ts <storeDir> <url> <sha256>.

import { openStore } from "@castle/cache";
import { source } from "../../src/define/index";
import { realizeSource } from "../../src/sources/index";

const [storeDir, url, sha256] = process.argv.slice(2);
if (!storeDir || !url || !sha256) throw new Error("usage: realize-child.ts <storeDir> <url> <sha256>");
const digest = await realizeSource(source.http({ url, sha256 }), { store: openStore(storeDir), overrides: new Map(), env: process.env });
process.stdout.write(digest);
