// Tests the schedule simulation behind the ETA and the time saved (cli/src/ui/schedule-simulation.ts):
// dependencies, build slots, slot-free work, running layers, longest path first.

import { describe, expect, it } from "vitest";
import { simulateSchedule, type SimulatedLayer } from "../src/ui/schedule-simulation";

const build = (name: string, remainingMs: number, waitsFor: string[] = [], extra: Partial<SimulatedLayer> = {}): SimulatedLayer => ({
  name, remainingMs, waitsFor, usesSlot: true, running: false, ...extra,
});

describe("simulateSchedule", () => {
  it("is zero with nothing left", () => {
    expect(simulateSchedule([], 4)).toBe(0);
  });

  it("runs a chain one after another whatever the slots", () => {
    expect(simulateSchedule([build("a", 1000), build("b", 2000, ["a"]), build("c", 3000, ["b"])], 8)).toBe(6000);
  });

  it("shares the build slots, and starts the longest path first", () => {
    // Two slots: long (10 s) and its dependent (5 s) form the critical path; four 3 s builds fill the other slot.
    const layers = [build("long", 10_000), build("after", 5000, ["long"]), ...["w", "x", "y", "z"].map((n) => build(n, 3000))];
    expect(simulateSchedule(layers, 2)).toBe(15_000);
    expect(simulateSchedule(layers, 1)).toBe(27_000);
  });

  it("lets slot-free work (fetching, pulling) run beside the builds", () => {
    const layers = [build("src", 5000, [], { usesSlot: false }), build("a", 4000), build("b", 4000, ["src"])];
    expect(simulateSchedule(layers, 1)).toBe(9000);
  });

  it("keeps running layers in their slots from the start, and ignores dependencies it does not know", () => {
    const layers = [build("running", 2000, [], { running: true }), build("next", 1000, ["gone"])];
    expect(simulateSchedule(layers, 1)).toBe(3000);
  });
});
