// Composition root of `edgeward agent`: identity from the data dir, a probe listener (which
// also serves data copies to peers), real host metrics, the heartbeat channel to the server,
// the service supervisor, the forwarding proxies and the firewall guarding both listeners.

import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { NodeMetrics, RegisterRequest } from "../api/contract.ts";
import { reconnectBackoffDefaults } from "../core/resilience/backoff.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import { writeEndpointFile } from "../runtime/endpoint-file.ts";
import { ServiceProxies } from "../runtime/proxy/service-proxies.ts";
import { HostMetrics } from "../runtime/metrics/host-metrics.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { systemRandom } from "../runtime/system-random.ts";
import { createAgentHttpServer } from "./agent-http.ts";
import { AgentFirewall } from "./agent-firewall.ts";
import { AgentCredentials } from "./agent-credentials.ts";
import {
  FleetBackups,
  fleetBackupDefaults,
  type FleetBackupsOptions,
} from "./backup/fleet-backups.ts";
import { beginIncarnation } from "./agent-state.ts";
import { ConnectionLimits } from "./connection-limits.ts";
import { createDataTransferHandler } from "./data-transfer/data-transfer-http.ts";
import { PeerSecurity } from "./peer-security.ts";
import { openAgentKeys, startAgentKeyRotation } from "./agent-keys.ts";
import { ServiceAgent } from "./service-agent.ts";
import { ServiceSupervisor } from "./supervisor/service-supervisor.ts";
import { noFaults, type FaultInjection } from "./fault-injector.ts";
import { HeartbeatChannel } from "./heartbeat-channel.ts";

/** Host metrics are sampled this often and ride on the next heartbeat. */
export const metricsIntervalMs = 1_000;
/**
 * Connections the kernel queues for the agent's listener before it accepts them (capped by
 * net.core.somaxconn). Node's default, 511, overflows under a burst of a few thousand
 * connections: the kernel then drops SYNs, the server's probe among them, and a dropped SYN
 * is retried only after a second — longer than any probe timeout (ADR 0010).
 */
export const listenBacklogMax = 4_096;

export interface AgentOptions {
  nodeId: string;
  serverUrl: string;
  dataDir: string;
  listenHost: string;
  listenPort: number;
  /** Attributes for a server without a fleet spec; a spec's values win. */
  zone?: string;
  tier?: string;
  capabilities?: string[];
  labels?: Record<string, string>;
  faults?: FaultInjection;
  /** Relative service commands resolve here; default the agent's working directory. */
  servicesCwd?: string;
  logger: Logger;
  clock?: Clock;
  /** The root key that wraps the keyring (docs/adr/0007-secrets-at-rest.md); else the usual places. */
  masterKeyFile?: string;
  /** How often the agent rotates its data key: weekly, monthly, Nd or Nh (default monthly). */
  keyRotation?: string;
  /** Single-use join token: enrols the node when it has no valid credential yet. */
  joinToken?: string;
  /** Fleet backup settings (tests shorten the schedule and use cheap repositories). */
  backups?: Partial<
    Pick<FleetBackupsOptions, "schedule" | "repositoryOptions" | "requestTimeoutMs">
  >;
}

export interface RunningAgent {
  url: string;
  incarnation: number;
  /** Stops the agent; a graceful stop tells the server (OFFLINE), a hard one does not. */
  stop(graceful: boolean): Promise<void>;
  /** Resolves when the agent stopped by itself (fenced by a newer incarnation). */
  fenced: Promise<string>;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const state = beginIncarnation(options.dataDir, options.nodeId);
  const keys = openAgentKeys(
    {
      dataDir: options.dataDir,
      masterKeyFile: options.masterKeyFile,
      keyRotation: options.keyRotation,
    },
    { clock, logger },
  );
  const cancelKeyRotation = startAgentKeyRotation(keys, { clock, logger });
  // Enrol (or load the stored credential) before anything listens: no identity, no agent.
  const credentials = await AgentCredentials.open({
    nodeId: state.nodeId,
    serverUrl: options.serverUrl,
    dataDir: options.dataDir,
    secrets: keys.files,
    joinToken: options.joinToken,
    clock,
    logger,
  });
  credentials.startRenewing();
  const peerSecurity = new PeerSecurity(
    {
      nodeId: state.nodeId,
      secrets: keys.files,
      requiredUntilTold: credentials.token !== undefined,
    },
    {
      clock,
      logger,
      sign: credentials.peerRequestSigner(),
      report: (message) => link.channel?.send(message) ?? false,
    },
  );

  // The channel is created below; the supervisor and the service agent reach it through this.
  const link: { channel?: HeartbeatChannel } = {};
  const firewall = new AgentFirewall(
    { dataDir: options.dataDir },
    { clock, logger, report: (message) => link.channel?.send(message) ?? false },
  );
  const connections = new ConnectionLimits();
  /**
   * A signed route's check: the signature first, then the firewall's node and role rules. A
   * connection that carried an authorized request (a verified signature; in an open fleet,
   * any) is a peer's: it no longer counts as a stranger's.
   */
  const authorizePeer = (request: IncomingMessage, bodySha256Header?: string) => {
    const authorization = firewall.afterSignature(
      request,
      peerSecurity.authorize(request, bodySha256Header),
    );
    if (authorization.ok) connections.verified(request.socket);
    return authorization;
  };
  const supervisor: ServiceSupervisor = new ServiceSupervisor(
    { dataDir: options.dataDir, nodeId: state.nodeId, cwd: options.servicesCwd ?? process.cwd() },
    {
      clock,
      logger,
      onChange: (instances) => services.instancesChanged(instances),
      onInstanceFailed: (service, generation, reason) =>
        services.instanceFailed(service, generation, reason),
    },
  );
  const proxies = new ServiceProxies({
    dataDir: options.dataDir,
    listenHost: options.listenHost,
    logger,
    clock,
    admit: (socket, service) => firewall.admitProxyConnection(socket, service),
  });
  const services: ServiceAgent = new ServiceAgent({
    supervisor,
    proxies,
    clock,
    logger,
    send: (message) => link.channel?.send(message) ?? false,
    restoreFromBackup: (service) => backups.restoreServiceData(service),
    signPeerRequest: peerSecurity.sign,
  });
  const backups = new FleetBackups(
    {
      nodeId: state.nodeId,
      dataDir: options.dataDir,
      schedule: options.backups?.schedule ?? fleetBackupDefaults.schedule,
      requestTimeoutMs: options.backups?.requestTimeoutMs ?? fleetBackupDefaults.requestTimeoutMs,
      ...(options.backups?.repositoryOptions === undefined
        ? {}
        : { repositoryOptions: options.backups.repositoryOptions }),
    },
    {
      clock,
      random: systemRandom,
      logger,
      services: {
        dataDirOf: (service) => supervisor.dataDirOf(service),
        runningServices: () =>
          supervisor
            .instances()
            .filter((instance) => instance.state !== "stopped" && instance.state !== "failed")
            .map((instance) => instance.service),
        logDir: join(options.dataDir, "logs"),
      },
      send: (message) => link.channel?.send(message) ?? false,
      serverCa: () => credentials.ca,
      peers: {
        sign: peerSecurity.sign,
        authorize: (request, bodySha256Header) => authorizePeer(request, bodySha256Header),
      },
    },
  );
  const dataTransfer = createDataTransferHandler({
    dataDirOf: (service) => {
      try {
        return supervisor.dataDirOf(service);
      } catch {
        return undefined;
      }
    },
    quiesce: (service) => supervisor.stop(service, Number.MAX_SAFE_INTEGER),
    logger,
    authorize: (request) => authorizePeer(request),
  });

  const http = createAgentHttpServer(
    { nodeId: state.nodeId, incarnation: state.incarnation },
    [dataTransfer, backups.blobApi],
    firewall,
    connections,
  );
  http.listen({ port: options.listenPort, host: options.listenHost, backlog: listenBacklogMax });
  await once(http, "listening");
  const address = http.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  const hostMetrics = new HostMetrics(options.dataDir);
  let freshMetrics: NodeMetrics | undefined;
  let cancelSampling = () => {};
  const sample = () => {
    hostMetrics
      .sample(clock.nowMs())
      .then((metrics) => {
        freshMetrics = metrics;
      })
      .catch((error: unknown) =>
        logger.warn({ err: (error as Error).message }, "could not measure host metrics"),
      )
      .finally(() => {
        cancelSampling = clock.schedule(metricsIntervalMs, sample);
      });
  };
  sample();

  const registration: RegisterRequest = {
    nodeId: state.nodeId,
    incarnation: state.incarnation,
    agentUrl: url,
    agentVersion: "0.1.0",
    ...(options.zone === undefined ? {} : { zone: options.zone }),
    ...(options.tier === undefined ? {} : { tier: options.tier }),
    ...(options.capabilities === undefined ? {} : { capabilities: options.capabilities }),
    ...(options.labels === undefined ? {} : { labels: options.labels }),
  };
  let resolveFenced: (reason: string) => void = () => {};
  const fenced = new Promise<string>((resolve) => {
    resolveFenced = resolve;
  });
  const channel = new HeartbeatChannel(
    {
      serverUrl: options.serverUrl,
      registration,
      faults: options.faults ?? noFaults,
      backoff: reconnectBackoffDefaults,
    },
    {
      clock,
      random: systemRandom,
      logger,
      takeFreshMetrics: () => {
        const metrics = freshMetrics;
        freshMetrics = undefined;
        return metrics;
      },
      requestOptions: () => credentials.requestOptions(),
      onFenced: (reason) => {
        logger.error({ reason }, "a newer process of this node is registered; stopping this one");
        resolveFenced(reason);
      },
      onServiceMessage: (message) => {
        if (message.type === "peer-identities") {
          peerSecurity.update(message);
          return Promise.resolve();
        }
        if (message.type === "firewall-rules") {
          firewall.update(message);
          return Promise.resolve();
        }
        return message.type === "backup-policies" || message.type === "backup-command"
          ? backups.handle(message)
          : services.handle(message);
      },
    },
  );
  link.channel = channel;
  channel.start();
  backups.start();
  writeEndpointFile(options.dataDir, { url, pid: process.pid });
  logger.info(
    { node: state.nodeId, incarnation: state.incarnation, url, server: options.serverUrl },
    "edgeward agent started",
  );

  return {
    url,
    incarnation: state.incarnation,
    fenced,
    async stop(graceful) {
      cancelSampling();
      cancelKeyRotation();
      credentials.stop();
      firewall.close();
      peerSecurity.close();
      await backups.close();
      await channel.stop(graceful);
      await services.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
