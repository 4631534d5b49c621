// Randomness as a port: the runtime uses the platform's generator, the simulator a seeded one,
// so every simulated run replays from its seed.

export interface Random {
  /** A float uniformly distributed in [0, 1). */
  nextFloat(): number;
}

/** A float uniformly distributed in [minimum, maximum). */
export function uniformBetween(random: Random, minimum: number, maximum: number): number {
  return minimum + (maximum - minimum) * random.nextFloat();
}
