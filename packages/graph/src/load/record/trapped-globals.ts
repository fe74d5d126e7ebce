// Owns the globals a definition sees while it is evaluated: `process` and `console` become
// recording views (builtin-views.ts), and what reads the clock, draws random numbers, schedules
// work for later or reaches the network (Date.now(), new Date(), Math.random(), performance,
// timers, fetch, the global crypto, WeakRef…) marks the definition impure before it runs as
// usual. Everything behaves exactly as before; only the recorder learns of it. Restored as soon
// as the evaluation (and the promise jobs it queued) is over.

import { allowView } from "./builtin-views";
import type { DefinitionRecorder } from "./definition-reads";

type Restore = () => void;

/** Installs the traps; the returned function puts every global back as it was. */
export function trapGlobals(recorder: DefinitionRecorder): Restore {
  const restores: Restore[] = [];
  const replace = (owner: object, key: string, value: unknown) => {
    const saved = Object.getOwnPropertyDescriptor(owner, key);
    Object.defineProperty(owner, key, { value, writable: true, configurable: true, enumerable: saved?.enumerable ?? false });
    restores.push(() => (saved ? Object.defineProperty(owner, key, saved) : delete (owner as Record<string, unknown>)[key]));
  };
  const onUse = (owner: object, key: string, what: string) => {
    const saved = Object.getOwnPropertyDescriptor(owner, key);
    if (!saved) return;
    const read = () => (saved.get ? saved.get.call(owner) : saved.value) as unknown;
    Object.defineProperty(owner, key, {
      configurable: true,
      enumerable: saved.enumerable ?? false,
      get: () => {
        recorder.impure(what);
        return read();
      },
      set: (value: unknown) => {
        recorder.impure(what);
        Object.defineProperty(owner, key, { value, writable: true, configurable: true, enumerable: saved.enumerable ?? false });
      },
    });
    restores.push(() => Object.defineProperty(owner, key, saved));
  };

  replace(globalThis, "process", recorder.builtin("process"));
  replace(globalThis, "console", allowView(recorder, "console", console as unknown as Record<string, unknown>, new Set()));
  replace(globalThis, "Date", trappedDate(recorder));
  const random = Math.random;
  replace(Math, "random", () => {
    recorder.impure("calls Math.random()");
    return random();
  });
  for (const name of ["setTimeout", "setInterval", "setImmediate", "fetch", "WeakRef", "FinalizationRegistry"]) {
    onUse(globalThis, name, `uses ${name}`);
  }
  onUse(globalThis, "performance", "uses performance (the clock)");
  onUse(globalThis, "crypto", "uses the global crypto (randomness)");
  replace(Intl, "DateTimeFormat", trappedDateTimeFormat(recorder));
  return () => {
    for (const restore of restores.reverse()) restore();
  };
}

/** Date as before, but reading the current time (Date.now(), new Date(), Date()) is recorded as impure. */
function trappedDate(recorder: DefinitionRecorder): DateConstructor {
  const RealDate = Date;
  function TrappedDate(this: unknown, ...args: unknown[]): unknown {
    if (!new.target) {
      recorder.impure("calls Date() (the current time)");
      return RealDate();
    }
    if (args.length === 0) recorder.impure("calls new Date() (the current time)");
    return Reflect.construct(RealDate, args, new.target === TrappedDate ? RealDate : new.target);
  }
  Object.setPrototypeOf(TrappedDate, RealDate);
  Object.defineProperty(TrappedDate, "prototype", { value: RealDate.prototype });
  Object.defineProperty(TrappedDate, "now", {
    value: () => {
      recorder.impure("calls Date.now()");
      return RealDate.now();
    },
    writable: true,
    configurable: true,
  });
  return TrappedDate as unknown as DateConstructor;
}

/** Formatting no date formats the current time. */
function trappedDateTimeFormat(recorder: DefinitionRecorder): typeof Intl.DateTimeFormat {
  const Real = Intl.DateTimeFormat;
  const Trapped = function (this: unknown, ...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    const format = new Real(...args);
    for (const method of ["format", "formatToParts"] as const) {
      const real = format[method].bind(format) as (date?: Date | number) => unknown;
      Object.defineProperty(format, method, {
        value: (date?: Date | number) => {
          if (date === undefined) recorder.impure("formats the current time (Intl.DateTimeFormat)");
          return real(date);
        },
      });
    }
    return format;
  } as unknown as typeof Intl.DateTimeFormat;
  Object.setPrototypeOf(Trapped, Real);
  Object.defineProperty(Trapped, "prototype", { value: Real.prototype });
  return Trapped;
}
