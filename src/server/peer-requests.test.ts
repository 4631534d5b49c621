// A secure fleet (credentials enforced) in one process: the server pushes the enrolled node
// keys to its agents, which cache them; backups into EDGE_CLUSTER (agent to agent) and
// REGIONAL (agent to server) run with signed requests; unsigned and forged requests to either
// are refused and become security events.

import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { testResources } from "../agent/agent-test-support.ts";
import type { BackupRunResponse } from "../api/contract.ts";
import { peerIdentitiesFileName } from "../agent/peer-security.ts";
import { backupScheduleDefaults } from "../core/backup/fleet-schedule.ts";
import type { BackupSpec } from "../core/spec/backup-schema.ts";
import { testingRepositoryOptions } from "../runtime/backup/testing.ts";
import { serverPeerReceiver } from "../core/security/peer-request.ts";
import { createPeerRequestSigner } from "../runtime/security/peer-signing.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { rawGet, sealedFile, startTestFleet, waitFor } from "./fleet-test-support.ts";

const { cleanups } = testResources("peer-requests");

const logger = pino({ level: process.env["DEBUG_PEER_TEST"] === undefined ? "silent" : "info" });

const backupSpec: BackupSpec = {
  tiers: { edgeCluster: { dataShards: 1, parityShards: 1 }, regional: {} },
  policies: [
    {
      name: "plant_data",
      dataTypes: ["configuration"],
      sources: { configuration: { type: "configuration" } },
      levels: [
        { level: "EDGE_LOCAL", intervalSeconds: 300, retentionDays: 7 },
        { level: "EDGE_CLUSTER", intervalSeconds: 1_800, retentionDays: 30 },
        { level: "REGIONAL", intervalSeconds: 3_600, retentionDays: 365 },
      ],
      encryptionRequired: true,
    },
  ],
};

const secureFleet = (nodeIds: readonly string[]) =>
  startTestFleet({
    prefix: "peer-requests",
    nodeIds,
    logger,
    cleanups,
    server: { backup: backupSpec },
    regionalBlobDir: true,
    agent: {
      backups: {
        schedule: { ...backupScheduleDefaults, jitterMsMax: 0, tickIntervalMs: 3_600_000 },
        repositoryOptions: testingRepositoryOptions,
      },
    },
  });

describe("signed peer requests in a secure fleet", () => {
  it("pushes and caches the fleet's keys, backs up over signed requests, refuses the rest", async () => {
    const nodeIds = ["edge-a", "edge-b", "edge-c"];
    const { server, agents, admin, events } = await secureFleet(nodeIds);

    // Every agent learns every enrolled key, and keeps them in a 0600 file.
    for (const agent of agents.values()) {
      const cache = join(agent.dataDir, peerIdentitiesFileName);
      await waitFor(() => {
        if (!existsSync(cache)) return false;
        const cached = JSON.parse(sealedFile(agent.dataDir, peerIdentitiesFileName) ?? "{}") as {
          required: boolean;
          keys: Record<string, string>;
        };
        return cached.required && nodeIds.every((nodeId) => nodeId in cached.keys);
      }, `the keys on ${agent.url}`);
    }

    // EDGE_CLUSTER (agent to agent) and REGIONAL (agent to server) with signed requests.
    const run = await server.app.inject({
      method: "POST",
      url: "/v1/backups/run",
      headers: admin,
      payload: { policy: "plant_data", node: "edge-a" },
    });
    expect(run.statusCode, run.body).toBe(200);
    const result = run.json<BackupRunResponse>().results[0];
    expect(result?.message ?? null).toBeNull();
    expect(result?.snapshots.map((snapshot) => snapshot.level)).toEqual([
      "EDGE_LOCAL",
      "EDGE_CLUSTER",
      "REGIONAL",
    ]);

    // An agent's data route: a forged request is refused and reported to the server, which
    // makes it a security event of the client's address (never of the node it claimed to be).
    const { privateKey: strangerKey } = generateKeyPairSync("ed25519");
    const edgeB = agents.get("edge-b");
    if (edgeB === undefined) throw new Error("no edge-b");
    const dataPath = "/v1/services/anything/data";
    const forgedData = createPeerRequestSigner(
      "edge-a",
      strangerKey,
      systemClock,
    )({
      receiver: "edge-b",
      method: "GET",
      pathAndQuery: dataPath,
    });
    expect(await rawGet(`${edgeB.url}${dataPath}`, forgedData)).toBe(401);
    const securityEvents = () =>
      events
        .filter((event) => event.type === "security.event")
        .map((event) => JSON.stringify(event));
    await waitFor(
      () => securityEvents().some((event) => /node edge-b refused a peer request/.test(event)),
      "the agent's report to become a security event",
    );
    expect(securityEvents().find((event) => /edge-b refused/.test(event))).toMatch(
      /"source":"ip:127\.0\.0\.1"/,
    );

    // The server's REGIONAL blob API: unsigned and forged requests are refused; a genuine one
    // (edge-a's own key, from its data dir) passes once, and its replay is refused.
    const listing = "/v1/blobs?prefix=nodes/";
    expect(await rawGet(`${server.url}${listing}`)).toBe(403);
    const forged = createPeerRequestSigner(
      "edge-a",
      strangerKey,
      systemClock,
    )({
      receiver: serverPeerReceiver,
      method: "GET",
      pathAndQuery: listing,
    });
    expect(await rawGet(`${server.url}${listing}`, forged)).toBe(403);
    const edgeA = agents.get("edge-a");
    if (edgeA === undefined) throw new Error("no edge-a");
    const edgeAKey = createPrivateKey(sealedFile(edgeA.dataDir, "node.key") ?? "");
    const genuine = createPeerRequestSigner(
      "edge-a",
      edgeAKey,
      systemClock,
    )({
      receiver: serverPeerReceiver,
      method: "GET",
      pathAndQuery: listing,
    });
    expect(await rawGet(`${server.url}${listing}`, genuine)).toBe(200);
    expect(await rawGet(`${server.url}${listing}`, genuine)).toBe(403);
    await waitFor(
      () => securityEvents().some((event) => /blob API request refused \(replayed\)/.test(event)),
      "the replay to become a security event",
    );

    // Receivers are bound: edge-a's genuine request for edge-b's shard API, captured and
    // replayed to the server or to edge-c, is refused, and so is one for the server replayed to
    // an agent. Each attacker uses its own loopback address, so its refusal is a fresh
    // security event of that client address (events are deduplicated per source and activity).
    const signedByEdgeA = createPeerRequestSigner("edge-a", edgeAKey, systemClock);
    const forEdgeB = signedByEdgeA({ receiver: "edge-b", method: "GET", pathAndQuery: listing });
    const edgeC = agents.get("edge-c");
    if (edgeC === undefined) throw new Error("no edge-c");
    const forServer = signedByEdgeA({
      receiver: serverPeerReceiver,
      method: "GET",
      pathAndQuery: listing,
    });
    expect(await rawGet(`${server.url}${listing}`, forEdgeB, "127.0.0.2")).toBe(403);
    expect(await rawGet(`${edgeC.url}${listing}`, forEdgeB, "127.0.0.3")).toBe(403);
    expect(await rawGet(`${edgeB.url}${listing}`, forServer, "127.0.0.3")).toBe(403);
    // Edge-b, whom it was signed for, still takes it: the other receivers took no nonce.
    expect(await rawGet(`${edgeB.url}${listing}`, forEdgeB)).toBe(200);
    const eventOf = (pattern: RegExp) => securityEvents().find((event) => pattern.test(event));
    await waitFor(
      () =>
        eventOf(/blob API request refused \(wrong-receiver\)/) !== undefined &&
        eventOf(/node edge-c refused a peer request .*\(wrong-receiver/) !== undefined,
      "the cross-receiver replays to become security events",
    );
    expect(eventOf(/blob API request refused \(wrong-receiver\)/)).toMatch(
      /"source":"ip:127\.0\.0\.2"/,
    );
    expect(eventOf(/node edge-c refused a peer request .*\(wrong-receiver/)).toMatch(
      /"source":"ip:127\.0\.0\.3"/,
    );
  }, 60_000);
});
