// End to end on loopback (issue 13): the industrial fleet as real processes, and a flood of
// unsigned peer requests to the agent that runs production_monitoring — sustained, then a
// burst of 2,000 concurrent connections — from another address than the server's. The node
// must not change status (no flap, no conviction), nothing may fail over, and the refusals
// must still reach the server, summed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventListResponse, FleetEvent, NodeListResponse } from "../../src/api/contract.ts";
import { detectorOptionsFor } from "../../src/core/membership/detector-options.ts";
import { waitFor } from "../../src/server/fleet-test-support.ts";
import {
  floodBurst,
  floodSourceAddress,
  floodSustained,
} from "../../bench/security/flood-client.ts";
import { fleetGet } from "./fleet-api.ts";
import { LocalFleetHarness } from "./local-fleet-harness.ts";

const fleet = new LocalFleetHarness("edgeward-e2e-flood-");
const { dir } = fleet;
const flooded = "factory-1-line-a-edge-1";

/** Every event after `afterId`, page by page. */
async function eventsAfter(afterId: number): Promise<FleetEvent[]> {
  const events: FleetEvent[] = [];
  for (let lastId = afterId; ;) {
    const page = await fleetGet<EventListResponse>(dir, `/v1/events?afterId=${lastId}&limit=1000`);
    events.push(...page.events);
    if (page.events.length === 0) return events;
    lastId = page.lastId;
  }
}

beforeAll(async () => {
  await fleet.up();
}, 120_000);

afterAll(() => fleet.down(), 60_000);

describe("a flooded agent", () => {
  it("keeps its node HEALTHY and its services in place, and reports the refusals summed", async () => {
    const agentUrl = fleet.fleetFile().nodes.find((node) => node.id === flooded)?.url;
    if (agentUrl === undefined) throw new Error(`${flooded} is not in fleet.json`);
    // Nobody is convicted during the server's startup grace: flood only once it is over.
    const startedAtMs = (await eventsAfter(0))[0]?.atMs ?? 0;
    const graceMs = detectorOptionsFor("lan").startupGraceMs;
    await waitFor(
      async () =>
        (await fleetGet<NodeListResponse>(dir, "/v1/nodes")).serverTimeMs >
        startedAtMs + graceMs + 1_000,
      "the server's startup grace to pass",
    );
    const before = await eventsAfter(0);
    const afterId = before.at(-1)?.id ?? 0;

    const sustained = await floodSustained(agentUrl, 115, 3);
    const burst = await floodBurst(agentUrl, 2_000);
    // Every request was refused (401) or, past the flooding host's share, cut off at accept.
    for (const answers of [sustained, burst])
      expect(
        Object.keys(answers).every((status) => status === "401" || status === "ECONNRESET"),
      ).toBe(true);
    expect(sustained["401"]).toBe(345);

    // The refusals reach the server as summed reports; their sum outruns the failed
    // authentications one source may have in a window, which makes a security event.
    await waitFor(
      async () =>
        (await eventsAfter(afterId)).some(
          (event) => event.type === "security.event" && event.source === `ip:${floodSourceAddress}`,
        ),
      "the summed refusals to become a security event",
      30_000,
    );
    const during = await eventsAfter(afterId);
    expect(during.filter((event) => event.type === "node.status")).toEqual([]);
    expect(during.filter((event) => event.type === "service.failover")).toEqual([]);
    const nodes = await fleetGet<NodeListResponse>(dir, "/v1/nodes");
    expect(nodes.nodes.find((node) => node.id === flooded)?.status).toBe("HEALTHY");
  }, 90_000);
});
