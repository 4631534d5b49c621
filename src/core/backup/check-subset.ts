// `check --read-data-subset`: "n/m" reads the n-th of m fixed slices of the packs (so m runs
// cover everything), "p%" a random sample whose draw the caller supplies.
import { BackupError } from "./errors.ts";

export type DataSubset =
  | { kind: "all" }
  | { kind: "slice"; part: number; parts: number }
  | { kind: "fraction"; fraction: number };

export function parseDataSubset(text: string): DataSubset {
  const slice = /^(\d+)\/(\d+)$/.exec(text);
  if (slice) {
    const part = Number(slice[1]);
    const parts = Number(slice[2]);
    if (parts >= 1 && part >= 1 && part <= parts) return { kind: "slice", part, parts };
  }
  const percentage = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percentage) {
    const fraction = Number(percentage[1]) / 100;
    if (fraction > 0 && fraction <= 1) return { kind: "fraction", fraction };
  }
  throw new BackupError(
    "INVALID_ARGUMENT",
    `--read-data-subset must be "n/m" (1 ≤ n ≤ m) or a percentage like "10%", got "${text}"`,
  );
}

/** Whether to read pack `packId`; `uniformDraw` in [0, 1) is used only for fractions. */
export function isPackInSubset(packId: string, subset: DataSubset, uniformDraw: number): boolean {
  switch (subset.kind) {
    case "all":
      return true;
    case "slice":
      return (parseInt(packId.slice(0, 8), 16) % subset.parts) + 1 === subset.part;
    case "fraction":
      return uniformDraw < subset.fraction;
  }
}
