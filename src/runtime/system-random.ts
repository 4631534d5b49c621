// The real Random: the platform's generator. Never used where a simulation must replay.

import type { Random } from "../ports/random.ts";

export const systemRandom: Random = { nextFloat: () => Math.random() };
