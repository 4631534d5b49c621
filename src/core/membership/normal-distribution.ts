// The normal distribution's upper tail and its inverse, for the phi accrual detector.

/**
 * Complementary error function, Chebyshev fit with fractional error below 1.2e-7 everywhere
 * (Numerical Recipes, erfcc), which keeps phi exact enough up to phi = 16.
 */
export function complementaryErrorFunction(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const polynomial =
    -z * z -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t *
                      (0.27886807 +
                        t *
                          (-1.13520398 +
                            t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const value = t * Math.exp(polynomial);
  return x >= 0 ? value : 2 - value;
}

/** P(X > x) for a standard normal X. */
export function upperTailProbability(x: number): number {
  return 0.5 * complementaryErrorFunction(x / Math.SQRT2);
}

/** The x with P(X > x) = probability, by bisection (called once per preset, not per heartbeat). */
export function upperTailQuantile(probability: number): number {
  if (!(probability > 0 && probability < 1)) {
    throw new RangeError(`tail probability must be in (0, 1), got ${probability}`);
  }
  let low = -40;
  let high = 40;
  for (let iteration = 0; iteration < 200; iteration += 1) {
    const middle = (low + high) / 2;
    if (upperTailProbability(middle) > probability) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}
