// Direct probes of an agent: an HTTP GET of its /healthz. Any HTTP answer means the agent's
// process is alive; a refused connection means its host is up but nothing listens there.

import { request } from "node:http";
import type { ProbeAnswer } from "../../core/membership/membership.ts";

/** Resolves with the answer, or undefined when there was none in time (the detector decides). */
export type Prober = (agentUrl: string, timeoutMs: number) => Promise<ProbeAnswer | undefined>;

export const httpProber: Prober = (agentUrl, timeoutMs) =>
  new Promise((resolve) => {
    let settled = false;
    const settle = (answer: ProbeAnswer | undefined) => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    let target: URL;
    try {
      target = new URL("/healthz", agentUrl);
    } catch {
      settle(undefined);
      return;
    }
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
      settle(error.code === "ECONNREFUSED" ? "refused" : undefined);
    });
    probe.end();
  });
