// Direct probes of an agent: an HTTP GET of its /healthz. Any HTTP answer means the agent's
// process is alive; a refused connection means its host is up but nothing listens there.

import { request } from "node:http";
import type { ProbeAnswer } from "../../core/membership/membership.ts";

/** Resolves with the answer, or undefined when there was none in time (the detector decides). */
export type Prober = (agentUrl: string, timeoutMs: number) => Promise<ProbeAnswer | undefined>;

/**
 * A connection reset while connecting happens when the probe reaches a dying process whose
 * listening socket is not closed yet; asking again tells "refused" from a live but busy agent.
 */
const resetRetriesMax = 2;

function probeOnce(target: URL, timeoutMs: number): Promise<ProbeAnswer | "reset" | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (answer: ProbeAnswer | "reset" | undefined) => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    const probe = request(
      target,
      { method: "GET", timeout: timeoutMs, agent: false },
      (response) => {
        response.resume();
        settle("alive");
      },
    );
    probe.on("timeout", () => {
      probe.destroy();
      settle(undefined);
    });
    probe.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") settle("refused");
      else if (error.code === "ECONNRESET") settle("reset");
      else settle(undefined);
    });
    probe.end();
  });
}

export const httpProber: Prober = async (agentUrl, timeoutMs) => {
  let target: URL;
  try {
    target = new URL("/healthz", agentUrl);
  } catch {
    return undefined;
  }
  const deadlineMs = Date.now() + timeoutMs;
  for (let attempt = 0; attempt <= resetRetriesMax; attempt += 1) {
    const remainingMs = deadlineMs - Date.now();
    if (remainingMs <= 0) return undefined;
    const answer = await probeOnce(target, remainingMs);
    if (answer !== "reset") return answer;
  }
  return undefined;
};
