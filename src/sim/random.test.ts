import { describe, expect, it } from "vitest";
import { InvalidSeedError, SeededRandom } from "./random.ts";

describe("SeededRandom (xoshiro128** seeded by SplitMix32)", () => {
  it("replays the same stream from the same seed", () => {
    const first = new SeededRandom(42);
    const second = new SeededRandom(42);
    for (let index = 0; index < 1_000; index += 1) {
      expect(second.nextUint32()).toBe(first.nextUint32());
    }
  });

  it("gives unrelated streams for neighbouring seeds", () => {
    const first = new SeededRandom(1);
    const second = new SeededRandom(2);
    let equal = 0;
    for (let index = 0; index < 1_000; index += 1) {
      if (first.nextUint32() === second.nextUint32()) equal += 1;
    }
    expect(equal).toBe(0);
  });

  it("pins its output so a change of algorithm cannot slip in unnoticed", () => {
    const random = new SeededRandom(0);
    expect([random.nextUint32(), random.nextUint32(), random.nextUint32()]).toEqual([
      3_809_008_728, 1_133_695_204, 53_579_671,
    ]);
  });

  it("draws floats in [0, 1) with the right mean", () => {
    const random = new SeededRandom(7);
    let sum = 0;
    const draws = 100_000;
    for (let index = 0; index < draws; index += 1) {
      const value = random.nextFloat();
      expect(value >= 0 && value < 1).toBe(true);
      sum += value;
    }
    expect(sum / draws).toBeCloseTo(0.5, 2);
  });

  it("draws standard normals", () => {
    const random = new SeededRandom(9);
    let sum = 0;
    let sumSquares = 0;
    const draws = 100_000;
    for (let index = 0; index < draws; index += 1) {
      const value = random.normal();
      sum += value;
      sumSquares += value * value;
    }
    expect(sum / draws).toBeCloseTo(0, 1);
    expect(sumSquares / draws).toBeCloseTo(1, 1);
  });

  it.each([-1, 1.5, 2 ** 32, Number.NaN])("rejects seed %s", (seed) => {
    expect(() => new SeededRandom(seed)).toThrow(InvalidSeedError);
  });
});
