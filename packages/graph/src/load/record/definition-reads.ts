// Owns recording everything a definition reads while it is evaluated, so that Castle can later
// tell, without evaluating it again, that it would give the same system: the environment
// variables it read (through a recording view of process.env), the files it read through Node's
// fs (a recording view bundled in place of `fs`, see builtin-views.ts), and whether it used the
// working directory. Whatever the definition does that cannot be recorded — a child process, the
// network, the clock, randomness, printing, timers, loading code at run time — makes it impure
// (with the reason), and an impure definition is always evaluated again.
//
// One recorder per load. The bundle's built-in modules reach it through a global symbol
// (RECORDER), because they are compiled into the cached bundle and bound when it is evaluated.
// Only what runs in the evaluation's asynchronous context counts: other code of the process that
// runs meanwhile (a test runner's timers) uses the same globals without being recorded.

import { AsyncLocalStorage } from "node:async_hooks";
import { readlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { builtinView } from "./builtin-views";
import { statIdentity, type FileRead } from "./stat-identity";

/** What a definition's evaluation depended on. */
export interface DefinitionReads {
  /** Why it cannot be replayed from what it read (empty: it can), e.g. "Date.now()". */
  impure: string[];
  /** Variables read, with the value each had (undefined: unset). */
  env: Map<string, string | undefined>;
  /** It listed the whole environment (Object.keys(process.env)…): every variable counts. */
  envListed: boolean;
  files: FileRead[];
  /** The working directory, when the definition used it (process.cwd(), a relative path). */
  cwd?: string;
}

/** Where the bundle's built-in module views find the recorder of the load evaluating them. */
export const RECORDER = Symbol.for("castle.definition.recorder");

const realRequire = createRequire(import.meta.url);
const evaluating = new AsyncLocalStorage<DefinitionRecorder>();

export class DefinitionRecorder {
  private readonly reasons = new Set<string>();
  private readonly env = new Map<string, string | undefined>();
  private envListed = false;
  private readonly files = new Map<string, FileRead>();
  private cwd?: string;
  /** Asynchronous reads started and not yet finished. */
  private pending = 0;
  private readonly views = new Map<string, unknown>();
  private envView?: NodeJS.ProcessEnv;

  constructor(
    /** The real environment and working directory (the recorder never reads process.*). */
    private readonly realEnv: NodeJS.ProcessEnv,
    private readonly realCwd: () => string,
  ) {}

  /** Runs fn (the evaluation) as this recorder's: what it does, and its continuations, count. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await evaluating.run(this, fn);
    } finally {
      // Nothing is attributed any more; the async context tracking stops costing anything.
      evaluating.disable();
    }
  }

  /** Whether the code running now is the definition's (see above). */
  private mine(): boolean {
    return evaluating.getStore() === this;
  }

  impure(reason: string): void {
    if (this.mine()) this.reasons.add(reason);
  }

  /** Records the identity of a path read now (the first read of each path counts). */
  file(path: unknown, follow: boolean): string | undefined {
    const abs = this.path(path);
    if (abs === undefined || !this.mine()) return abs;
    const key = `${follow ? "s" : "l"}${abs}`;
    if (!this.files.has(key)) this.files.set(key, { path: abs, follow, identity: statIdentity(abs, follow) });
    return abs;
  }

  /** What realpath depends on: lstat of each component, following every link on the way. */
  realpath(path: unknown): void {
    let abs = this.path(path);
    for (let hops = 0; abs !== undefined && hops < 40; hops++) {
      const parts = abs.split("/").filter(Boolean);
      let at = "";
      let next: string | undefined;
      for (let i = 0; i < parts.length && next === undefined; i++) {
        at = `${at}/${parts[i]}`;
        this.file(at, false);
        try {
          const target = readlinkSync(at);
          next = resolve(at, "..", target, ...parts.slice(i + 1));
        } catch {
          // not a link (or gone): go on
        }
      }
      abs = next;
    }
  }

  /** A path argument as an absolute path (undefined for an fd, which the caller checks). */
  path(path: unknown): string | undefined {
    let text: string;
    if (typeof path === "string") text = path;
    else if (path instanceof URL) text = fileURLToPath(path);
    else if (Buffer.isBuffer(path)) text = path.toString("utf8");
    else return undefined;
    if (isAbsolute(text)) return resolve(text);
    return join(this.usedCwd(), text);
  }

  usedCwd(): string {
    if (!this.mine()) return this.realCwd();
    return (this.cwd ??= this.realCwd());
  }

  /** The environment as the definition sees it: reads are recorded, writes make it impure. */
  environment(): NodeJS.ProcessEnv {
    const real = this.realEnv;
    const read = (key: string | symbol) => {
      if (typeof key === "string" && this.mine()) this.env.set(key, real[key]);
    };
    return (this.envView ??= new Proxy(real, {
      get: (target, key) => {
        read(key);
        return Reflect.get(target, key);
      },
      has: (target, key) => {
        read(key);
        return Reflect.has(target, key);
      },
      ownKeys: (target) => {
        if (this.mine()) this.envListed = true;
        return Reflect.ownKeys(target);
      },
      getOwnPropertyDescriptor: (target, key) => {
        read(key);
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
      set: (target, key, value) => {
        this.impure(`sets the environment variable ${String(key)}`);
        return Reflect.set(target, key, value);
      },
      defineProperty: (target, key, descriptor) => {
        this.impure(`sets the environment variable ${String(key)}`);
        return Reflect.defineProperty(target, key, descriptor);
      },
      deleteProperty: (target, key) => {
        this.impure(`deletes the environment variable ${String(key)}`);
        return Reflect.deleteProperty(target, key);
      },
    }));
  }

  /** The view of a Node built-in module that the definition's bundle gets instead of it. */
  builtin(name: string): unknown {
    const bare = name.replace(/^node:/, "");
    if (!this.views.has(bare)) this.views.set(bare, builtinView(bare, this, realRequire(`node:${bare}`)));
    return this.views.get(bare);
  }

  /** The real module, for Castle's own API bundled into the definition. */
  realBuiltin(name: string): unknown {
    return realRequire(`node:${name}`);
  }

  /** The bundle's own `require`: anything it still loads at run time is not recorded. */
  guardRequire(require: NodeJS.Require): NodeJS.Require {
    const guarded = ((id: string) => {
      this.impure(`loads ${String(id)} at run time (require)`);
      return require(id);
    }) as NodeJS.Require;
    for (const key of ["resolve", "cache", "main", "extensions"] as const) {
      Object.defineProperty(guarded, key, {
        get: () => {
          this.impure(`uses require.${key}`);
          return require[key];
        },
      });
    }
    return guarded;
  }

  /** Wraps an asynchronous read so the load knows whether one is still running at its end. */
  track<T>(promise: Promise<T>): Promise<T> {
    if (!this.mine()) return promise;
    this.pending++;
    return promise.finally(() => this.pending--);
  }

  trackCallback(args: unknown[]): unknown[] {
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback !== "function" || !this.mine()) return args;
    this.pending++;
    const copy = [...args];
    copy[last] = (...results: unknown[]) => {
      this.pending--;
      return (callback as (...a: unknown[]) => unknown)(...results);
    };
    return copy;
  }

  /** What was read; asynchronous reads still running make the definition impure. */
  reads(): DefinitionReads {
    if (this.pending > 0) this.reasons.add("still reading files after it was evaluated");
    return {
      impure: [...this.reasons],
      env: new Map(this.env),
      envListed: this.envListed,
      files: [...this.files.values()],
      ...(this.cwd !== undefined ? { cwd: this.cwd } : {}),
    };
  }
}
