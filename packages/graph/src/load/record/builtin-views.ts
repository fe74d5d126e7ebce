// Owns the views of Node's built-in modules that a definition's bundle gets in place of the real
// ones (see esbuild-recording.ts): `fs` and `fs/promises` record each path they read (its stat
// identity, taken before the read) and make anything else — a write, a watch, an fd from
// elsewhere — impure; `process` gives the recording environment and a recorded cwd(); `crypto`,
// `os` and `module` let through only what cannot differ between two runs on this machine; pure
// modules (path, url, util…) are the real ones; every other module (child_process, net, http,
// timers, worker_threads…) is impure as soon as the definition uses one of its members.

import type { DefinitionRecorder } from "./definition-reads";

type Real = Record<string | symbol, unknown>;

/** Modules whose members cannot read the world or act on it. */
const PURE = new Set([
  "path", "path/posix", "path/win32", "url", "util", "util/types", "querystring", "string_decoder", "punycode",
  "buffer", "assert", "assert/strict", "events", "stream", "stream/promises", "stream/web", "stream/consumers", "zlib",
]);

/** Members of mixed modules that give the same answer on every run on this machine. */
const ALLOWED: Record<string, Set<string>> = {
  crypto: new Set(["createHash", "createHmac", "hash", "getHashes", "getCiphers", "getCurves", "timingSafeEqual", "constants", "Hash", "Hmac"]),
  os: new Set(["EOL", "platform", "arch", "endianness", "constants", "type", "devNull"]),
  module: new Set(["SourceMap", "builtinModules", "isBuiltin", "findSourceMap"]),
};

/** fs members that read one path: whether they follow symlinks. */
const PATH_READS: Record<string, boolean> = {
  readFile: true, exists: true, stat: true, access: true, readdir: true, lstat: false, readlink: false, open: true,
  createReadStream: true,
};

/** What process members a definition may use as they are: they are the same on every run. */
const PROCESS_ALLOWED = new Set(["version", "versions", "platform", "arch", "release", "features", "config", "execPath", "nextTick"]);

export function builtinView(name: string, recorder: DefinitionRecorder, real: unknown): unknown {
  if (PURE.has(name)) return real;
  switch (name) {
    case "fs":
      return fsView(recorder, real as Real, false);
    case "fs/promises":
      return fsView(recorder, real as Real, true);
    case "process":
      return processView(recorder, real as NodeJS.Process);
    default:
      return allowView(recorder, name, real as Real, ALLOWED[name] ?? new Set());
  }
}

/** An object with the real module's members, each looked up through `member` on every use (so
 * each use is recorded: the first may not have been the definition's). */
function view(real: Real, member: (key: string, value: unknown) => unknown): object {
  const out = Object.create(Object.getPrototypeOf(real) as object | null) as object;
  for (const key of Object.getOwnPropertyNames(real)) {
    const descriptor = Object.getOwnPropertyDescriptor(real, key);
    Object.defineProperty(out, key, {
      enumerable: descriptor?.enumerable ?? true,
      configurable: true,
      get: () => member(key, real[key]),
    });
  }
  return out;
}

/** Members in `allowed` as they are; using any other makes the definition impure. */
export function allowView(recorder: DefinitionRecorder, name: string, real: Real, allowed: Set<string>): object {
  return view(real, (key, value) => {
    if (!allowed.has(key)) recorder.impure(`uses ${name}.${key}`);
    return value;
  });
}

/** A wrapper keeps what callers may look up on the function itself (promisify.custom, native…). */
function withPropsOf<F extends (...args: never[]) => unknown>(wrapper: F, fn: unknown): F {
  for (const key of Reflect.ownKeys(fn as object)) {
    if (key === "length" || key === "name" || key === "prototype") continue;
    Object.defineProperty(wrapper, key, Object.getOwnPropertyDescriptor(fn as object, key)!);
  }
  return wrapper;
}

function fsView(recorder: DefinitionRecorder, real: Real, promises: boolean): object {
  const prefix = promises ? "fs/promises" : "fs";
  const ownFds = new Set<number>();
  let promisesView: object | undefined;
  const fdOk = (fd: unknown, what: string) => {
    if (typeof fd !== "number" || !ownFds.has(fd)) recorder.impure(`calls ${prefix}.${what}() on a file it did not open for reading`);
  };
  const readOnly = (flags: unknown) => flags === undefined || flags === "r" || flags === "rs" || flags === "sr" || flags === 0;
  // One wrapper per member, so `fs.readFileSync === fs.readFileSync` as with the real module.
  const wrappers = new Map<string, unknown>();
  return view(real, (key, value) => {
    if (wrappers.has(key)) return wrappers.get(key);
    const made = fsMember(key, value);
    if (typeof value === "function" && !/^[A-Z]/.test(key) && made !== value) wrappers.set(key, made);
    return made;
  });

  function fsMember(key: string, value: unknown): unknown {
    if (key === "promises" && !promises) return (promisesView ??= fsView(recorder, value as Real, true));
    if (typeof value !== "function") return value;
    const fn = value as (...args: unknown[]) => unknown;
    if (/^[A-Z]/.test(key)) return fn; // classes: Stats, Dirent, ReadStream…
    const sync = !promises && key.endsWith("Sync");
    const base = sync ? key.slice(0, -4) : key;
    if (!(base in PATH_READS) && base !== "realpath" && !(sync && (base === "read" || base === "fstat" || base === "close"))) {
      recorder.impure(`uses ${prefix}.${key}`);
      return fn;
    }
    const call = (args: unknown[]) => {
      if (promises) return recorder.track(fn.apply(real, args) as Promise<unknown>);
      if (sync || base === "createReadStream") return fn.apply(real, args);
      return fn.apply(real, recorder.trackCallback(args));
    };
    if (base === "realpath") {
      const wrapped = (...args: unknown[]) => {
        recorder.realpath(args[0]);
        return call(args);
      };
      withPropsOf(wrapped, fn);
      if (typeof (fn as { native?: unknown }).native === "function") (wrapped as unknown as { native: unknown }).native = wrapped;
      return wrapped;
    }
    if (base in PATH_READS) {
      return withPropsOf((...args: unknown[]) => {
        const [path, options] = args;
        if (base === "readdir" && typeof options === "object" && options !== null && (options as { recursive?: unknown }).recursive) {
          recorder.impure(`lists a directory tree (${prefix}.${key} recursive)`);
        } else if (base === "open" && !readOnly(options)) {
          recorder.impure(`opens a file for writing (${prefix}.${key})`);
        } else if (typeof path === "number") {
          fdOk(path, key);
        } else if (recorder.file(path, PATH_READS[base]!) === undefined) {
          recorder.impure(`calls ${prefix}.${key}() on something that is not a path`);
        }
        const result = call(args);
        if (sync && base === "open" && typeof result === "number") ownFds.add(result);
        return result;
      }, fn);
    }
    // readSync, fstatSync, closeSync: only on what it opened for reading.
    return withPropsOf((...args: unknown[]) => {
      fdOk(args[0], key);
      if (base === "close") ownFds.delete(args[0] as number);
      return fn.apply(real, args);
    }, fn);
  }
}

function processView(recorder: DefinitionRecorder, real: NodeJS.Process): NodeJS.Process {
  const cwd = () => recorder.usedCwd();
  const proxy: NodeJS.Process = new Proxy(real, {
    get: (target, key, receiver) => {
      if (key === "env") return recorder.environment();
      if (key === "cwd") return cwd;
      if (typeof key === "string" && !PROCESS_ALLOWED.has(key)) recorder.impure(`uses process.${key}`);
      return Reflect.get(target, key, receiver === proxy ? target : receiver);
    },
    set: (target, key, value) => {
      recorder.impure(`sets process.${String(key)}`);
      return Reflect.set(target, key, value);
    },
    defineProperty: (target, key, descriptor) => {
      recorder.impure(`sets process.${String(key)}`);
      return Reflect.defineProperty(target, key, descriptor);
    },
    deleteProperty: (target, key) => {
      recorder.impure(`deletes process.${String(key)}`);
      return Reflect.deleteProperty(target, key);
    },
  });
  return proxy;
}
