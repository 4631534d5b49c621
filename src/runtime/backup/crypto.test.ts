// Decrypting into a caller's buffer: the same plaintext as `unseal`, in place too, and a
// modified byte anywhere is refused.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CorruptObjectError } from "../../core/backup/errors.ts";
import { noise } from "./testing.ts";
import { seal, sealOverheadBytes, unseal, unsealInto } from "./crypto.ts";

const key = randomBytes(32);
const associatedData = Buffer.from("data blob");

describe("unsealInto", () => {
  it("gives unseal's plaintext, into a separate buffer or in place, across piece boundaries", () => {
    for (const length of [0, 1, 65_535, 65_536, 65_537, 300_000]) {
      const plaintext = noise(length, length + 1);
      const sealed = seal(key, plaintext, associatedData);
      expect(unseal(key, sealed, associatedData, "blob")).toEqual(plaintext);
      const target = Buffer.alloc(length + 10);
      expect(unsealInto(key, sealed, associatedData, "blob", target)).toEqual(plaintext);
      // In place: the plaintext lands where the sealed bytes were.
      const inPlace = Buffer.from(sealed);
      expect(unsealInto(key, inPlace, associatedData, "blob", inPlace)).toEqual(plaintext);
    }
  });

  it("refuses a modified byte, a wrong key or a short object", () => {
    const sealed = seal(key, noise(200_000, 9), associatedData);
    const target = Buffer.alloc(sealed.length);
    for (const position of [0, 20, 100_000, sealed.length - 1]) {
      const modified = Buffer.from(sealed);
      modified[position] = (modified[position] as number) ^ 0x01;
      expect(() => unsealInto(key, modified, associatedData, "blob", target)).toThrow(
        CorruptObjectError,
      );
    }
    expect(() => unsealInto(randomBytes(32), sealed, associatedData, "blob", target)).toThrow(
      /authentication failed/,
    );
    expect(() =>
      unsealInto(key, sealed.subarray(0, sealOverheadBytes - 1), associatedData, "blob", target),
    ).toThrow(/too short/);
  });
});
