// Small, deterministic summaries for the report: nearest-rank percentiles, fixed rounding.

export interface Distribution {
  readonly count: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** Nearest-rank percentiles (no interpolation, so every value reported was observed). */
export function distribution(samples: readonly number[], decimals: number): Distribution {
  if (samples.length === 0) return { count: 0, p50: null, p99: null, max: null };
  const sorted = Float64Array.from(samples).sort();
  const at = (quantile: number) =>
    round(sorted[Math.max(0, Math.ceil(quantile * sorted.length) - 1)] ?? 0, decimals);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) };
}

export function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  // Adding zero turns a negative zero into zero, so the JSON never prints "-0".
  return Math.round(value * factor) / factor + 0;
}
