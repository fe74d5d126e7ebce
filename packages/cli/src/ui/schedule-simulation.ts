// Owns predicting how long a set of layers takes to finish, the way the scheduler runs them: a
// layer starts once the layers it waits for are done, builds take one of `slots` build slots
// (imports, pulls and merges take none), the longest remaining path first. Pure and cheap (a
// few hundred layers in well under a millisecond), so the live view can ask every frame. Used
// for the ETA and for what the cache saved.

export interface SimulatedLayer {
  name: string;
  /** Names of the layers it waits for; names not in the list count as done. */
  waitsFor: readonly string[];
  /** Time it still needs, ms. */
  remainingMs: number;
  /** Whether it needs a build slot. */
  usesSlot: boolean;
  /** Already running (holds its slot from time 0). */
  running: boolean;
}

/** When the last of `layers` would finish, in ms from now. Layers must come dependencies first. */
export function simulateSchedule(layers: readonly SimulatedLayer[], slots: number): number {
  if (layers.length === 0) return 0;
  const byName = new Map(layers.map((layer, index) => [layer.name, index]));
  const dependents: number[][] = layers.map(() => []);
  const blockers = layers.map((layer, index) => {
    let count = 0;
    for (const name of new Set(layer.waitsFor)) {
      const dep = byName.get(name);
      if (dep === undefined || dep === index) continue;
      dependents[dep]!.push(index);
      count++;
    }
    return count;
  });
  // Longest remaining path through each layer (dependencies come first, so walk backwards).
  const pathMs = layers.map((layer) => layer.remainingMs);
  for (let i = layers.length - 1; i >= 0; i--) {
    let longest = 0;
    for (const next of dependents[i]!) longest = Math.max(longest, pathMs[next]!);
    pathMs[i] = layers[i]!.remainingMs + longest;
  }

  const ready: number[] = [];
  const running: { index: number; endsAt: number }[] = [];
  let freeSlots = Math.max(1, slots);
  for (const [index, layer] of layers.entries()) {
    if (layer.running) {
      running.push({ index, endsAt: layer.remainingMs });
      if (layer.usesSlot) freeSlots--;
    } else if (blockers[index] === 0) ready.push(index);
  }
  let now = 0;
  let finished = 0;
  while (finished < layers.length) {
    // Start what can start: slot-free work at once, builds by longest path while slots last.
    ready.sort((a, b) => pathMs[b]! - pathMs[a]!);
    for (let i = 0; i < ready.length; ) {
      const index = ready[i]!;
      const layer = layers[index]!;
      if (layer.usesSlot && freeSlots <= 0) {
        i++;
        continue;
      }
      if (layer.usesSlot) freeSlots--;
      running.push({ index, endsAt: now + layer.remainingMs });
      ready.splice(i, 1);
    }
    if (running.length === 0) break; // only layers blocked by something that never ends: stop
    running.sort((a, b) => a.endsAt - b.endsAt);
    const next = running.shift()!;
    now = Math.max(now, next.endsAt);
    finished++;
    if (layers[next.index]!.usesSlot) freeSlots++;
    for (const dependent of dependents[next.index]!) {
      if (--blockers[dependent]! === 0 && !layers[dependent]!.running) ready.push(dependent);
    }
  }
  return now;
}
