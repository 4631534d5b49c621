// Composition root of `edgeward server`: wires the core detector to the SQLite store, the
// system clock, HTTP probes and the fastify app.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import { failoverDefaults, type FailoverOptions } from "../core/failover/failover-options.ts";
import type { DetectorOptions } from "../core/membership/detector-options.ts";
import { builtinRoles } from "../core/security/access-policy.ts";
import type { SecuritySpec } from "../core/spec/security-schema.ts";
import type { ServiceSpec } from "../core/spec/service-schema.ts";
import type { Clock } from "../ports/clock.ts";
import type { Store } from "../ports/store.ts";
import { httpProber, type Prober } from "../runtime/probe/http-prober.ts";
import { writeEndpointFile } from "../runtime/endpoint-file.ts";
import { adminTokenFileName } from "../runtime/security/admin-token-file.ts";
import {
  loadOrCreateCertificateAuthority,
  type TlsMaterial,
} from "../runtime/security/certificate-authority.ts";
import type { KeyRotationReport } from "../runtime/security/data-dir-keys.ts";
import type { SecretFiles } from "../runtime/security/secret-files.ts";
import { bootstrapAdminTtlMs, TokenService } from "../runtime/security/token-service.ts";
import { SqliteStore } from "../runtime/store/sqlite-store.ts";
import { systemClock } from "../runtime/system-clock.ts";
import type { BackupSpec } from "../core/spec/backup-schema.ts";
import { createBlobStoreHttpHandler } from "../runtime/backup/blob-store-http-handler.ts";
import { DirectoryBlobStore } from "../runtime/backup/directory-blob-store.ts";
import { buildApp } from "./app.ts";
import { BackupControl, backupControlDefaults } from "./backup/backup-control.ts";
import { cloudTargetOf } from "./backup/cloud-target.ts";
import { ControlPlane } from "./control-plane.ts";
import { EventLog } from "./event-log.ts";
import { FailureDetection } from "./failure-detection.ts";
import { NodeDirectory, type DeclaredNode } from "./node-directory.ts";
import { ServerLedger } from "./ledger/server-ledger.ts";
import { registerLedgerRoutes } from "./routes/ledger.ts";
import { registerQuarantineRoutes } from "./routes/quarantine.ts";
import { registerKeyRoutes } from "./routes/keys.ts";
import { ServerMetrics } from "./server-metrics.ts";
import { ServerPeerRequests } from "./peer-requests.ts";
import { ServerSecurity } from "./server-security.ts";
import { openServerKeys, startServerKeyRotation } from "./server-keys.ts";
import { AgentLinks } from "./services/agent-links.ts";
import { ServerFirewall } from "./server-firewall.ts";
import { AlertWebhook } from "./services/alert-webhook.ts";
import { DrillRunner } from "./services/drill-runner.ts";
import { serviceCatalogFromSpec } from "./services/service-catalog.ts";
import { ServiceControl } from "./services/service-control.ts";

/** Heartbeat times and metrics reach the disk at least this often. */
export const nodeFlushIntervalMs = 2_000;

export interface ServerSecurityOptions {
  /** Serve HTTPS with the fleet's CA (created in <data-dir>/tls at first start). */
  tls: boolean;
  /**
   * Require credentials and apply RBAC. false opens every route to anyone: only for a local
   * fleet whose agents do not enrol yet, and the server says so loudly.
   */
  enforce: boolean;
  /** The fleet spec's roles, access rules and intrusion detection settings. */
  spec?: SecuritySpec;
}

/** Secure by default in the library too: credentials required; TLS is the CLI's default. */
export const serverSecurityDefaults: ServerSecurityOptions = { tls: false, enforce: true };

export interface ServerOptions {
  host: string;
  port: number;
  /** Holds state.db and endpoint.json. */
  dataDir: string;
  detection: DetectorOptions;
  declaredNodes?: ReadonlyMap<string, DeclaredNode>;
  /** SHA-256 (hex) of the fleet spec file's bytes; the ledger records each new one. */
  fleetSpecDigest?: string;
  /** The fleet spec's services: the server places them and fails them over. */
  services?: readonly ServiceSpec[];
  failover?: FailoverOptions;
  /** Alerts and finished failovers are POSTed here as JSON. */
  alertWebhookUrl?: URL;
  /** The fleet spec's backup section: policies pushed to agents, retention, tiers. */
  backup?: BackupSpec;
  /** Serve a blob store from this directory under /v1/blobs: the REGIONAL tier. */
  blobDir?: string;
  /** s3://host:port/bucket/prefix for the CLOUD tier (overrides the spec's). */
  cloudRepo?: string;
  logger: PinoLogger;
  security?: ServerSecurityOptions;
  /** The root key that wraps the keyring (docs/adr/0007-secrets-at-rest.md); else the usual places. */
  masterKeyFile?: string;
  /** Replace the real ones in tests. */
  clock?: Clock;
  prober?: Prober;
  store?: Store;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  plane: ControlPlane;
  security: ServerSecurity;
  /** The bootstrap admin credential (also in <data-dir>/admin.token, sealed). */
  adminToken: string;
  /** Rotates the data key and the fleet backup password now (recorded in the ledger). */
  rotateKeys(): KeyRotationReport[];
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  mkdirSync(options.dataDir, { recursive: true });
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const keys = openServerKeys(
    {
      dataDir: options.dataDir,
      masterKeyFile: options.masterKeyFile,
      keyRotation: options.security?.spec?.encryption.keyRotation,
    },
    { clock, logger },
  );
  const store = options.store ?? new SqliteStore(join(options.dataDir, "state.db"));
  const directory = new NodeDirectory(store, logger);
  await directory.load();
  const events = new EventLog(store, logger);
  const ledger = ServerLedger.open(options.dataDir, { clock, logger, secrets: keys.files });
  events.subscribe((event) => ledger.recordFleetEvent(event));
  if (options.fleetSpecDigest !== undefined)
    ledger.recordConfig("fleet-spec", options.fleetSpecDigest);
  // The metrics read node counts from the detector only when scraped, after both exist.
  const metrics: ServerMetrics = new ServerMetrics((): Map<string, number> =>
    detection.countByStatus(),
  );
  const detection: FailureDetection = new FailureDetection(options.detection, {
    clock,
    directory,
    events,
    metrics,
    logger,
    prober: options.prober ?? httpProber,
  });
  const links = new AgentLinks(clock);
  const catalog = serviceCatalogFromSpec(options.services ?? []);
  const services = new ServiceControl({
    clock,
    logger,
    store,
    events,
    links,
    catalog,
    nodes: {
      all: () => directory.all(),
      get: (nodeId) => directory.get(nodeId),
      status: (nodeId) => detection.status(nodeId),
    },
    options: options.failover ?? failoverDefaults,
    onFailoverEnded: (record) => ledger.recordFailover(record),
    webhook:
      options.alertWebhookUrl === undefined
        ? undefined
        : new AlertWebhook(options.alertWebhookUrl, logger),
  });
  detection.onStatusChange((nodeId, to, reason) => services.nodeStatusChanged(nodeId, to, reason));
  const drills = new DrillRunner({ clock, logger, store, events, catalog, control: services });
  const cloud = cloudTargetOf(options.backup, options.cloudRepo, process.env);
  if (cloud.warning !== null) logger.warn({}, cloud.warning);
  const backups = new BackupControl(
    {
      ...backupControlDefaults,
      spec: options.backup,
      secrets: keys.files,
      regionalEnabled: options.blobDir !== undefined,
      cloud: cloud.target,
    },
    {
      clock,
      logger,
      store,
      events,
      links,
      nodes: () => directory.all(),
      nodeOfService: (service) => services.resolve(service)?.nodeId ?? null,
    },
  );
  const securityOptions = options.security ?? serverSecurityDefaults;
  const tls: TlsMaterial | undefined = securityOptions.tls
    ? loadOrCreateCertificateAuthority(keys.files, [options.host], clock.nowMs())
    : undefined;
  const tokens = await TokenService.open(keys.files, store, clock);
  tokens.onFact((fact) => ledger.recordToken(fact));
  const adminToken = await bootstrapAdminToken(keys.files, tokens);
  const security = new ServerSecurity({
    tokens,
    events,
    clock,
    logger,
    tls,
    spec: securityOptions.spec,
    enforce: securityOptions.enforce,
  });
  // Agents sign their requests to the REGIONAL blob API with their enrolled keys (ADR 0006,
  // "Peer requests"); the same keys are pushed to agents for their EDGE_CLUSTER shard APIs.
  const peerRequests = new ServerPeerRequests(
    { required: securityOptions.enforce },
    { tokens, security, links, metrics, clock, logger },
  );
  const firewall = new ServerFirewall(securityOptions.spec?.network.firewall ?? [], {
    links,
    events,
    metrics,
    logger,
  });
  security.onNodeQuarantined((nodeId, reason) => {
    ledger.record({
      kind: "quarantine",
      atMs: clock.nowMs(),
      data: { node: nodeId, action: "quarantined", reason: reason.slice(0, 200) },
    });
    services
      .quarantine(nodeId, reason)
      .catch((error: unknown) => logger.error({ err: error, node: nodeId }, "quarantine failed"));
    // The node's credentials are revoked right after this listener: its key leaves the fleet's.
    queueMicrotask(() => peerRequests.keysChanged());
  });
  const blobApi =
    options.blobDir === undefined
      ? undefined
      : createBlobStoreHttpHandler(new DirectoryBlobStore(options.blobDir), {
          authorize: (request) => peerRequests.authorizeBlobRequest(request),
        });
  const plane = new ControlPlane({
    clock,
    logger,
    directory,
    detection,
    events,
    metrics,
    declaredNodes: options.declaredNodes,
    services,
    links,
    drills,
    backups,
    ledger,
    peers: peerRequests,
    enrolledKeyOf: (nodeId) => tokens.enrolledKeyOf(nodeId),
    firewall,
  });
  if (!securityOptions.enforce)
    logger.warn(
      {},
      "ACCESS CONTROL IS OFF: every API request is allowed without a credential. Never run a fleet like this outside one machine",
    );
  if (tls === undefined)
    logger.warn(
      {},
      "INSECURE: the API speaks plain HTTP; credentials and fleet data cross the network in the clear",
    );
  const app = await buildApp(plane, {
    logger,
    security,
    ...(blobApi === undefined ? {} : { blobApi }),
  });
  registerLedgerRoutes(app, ledger);
  registerQuarantineRoutes(app, { services, security, ledger, clock });
  ledger.start();
  const keyRotation = startServerKeyRotation(keys, {
    clock,
    logger,
    rotatePassword: (nowMs) => backups.rotatePassword(nowMs),
    onRotated: (report) =>
      ledger.record({
        kind: "key.rotation",
        atMs: report.atMs,
        data: { keyId: report.keyId, purpose: report.purpose, previousKeyId: report.previousKeyId },
      }),
  });
  registerKeyRoutes(app, keyRotation);
  detection.start();
  await services.start();
  await drills.start();
  await backups.start();

  let cancelFlush = () => {};
  const scheduleFlush = () => {
    cancelFlush = clock.schedule(nodeFlushIntervalMs, () => {
      directory
        .flush()
        .catch((error: unknown) => logger.error({ err: error }, "could not store heartbeat times"))
        .finally(scheduleFlush);
    });
  };
  scheduleFlush();

  const address = await app.listen({ host: options.host, port: options.port });
  const url = address.replace("[::1]", "localhost");
  backups.setServerUrl(url);
  writeEndpointFile(options.dataDir, { url, pid: process.pid });
  logger.info(
    { url, preset: options.detection.presetName, nodes: directory.size },
    "edgeward server listening",
  );

  return {
    url,
    app,
    plane,
    security,
    adminToken,
    rotateKeys: () => keyRotation.rotateNow(),
    async close() {
      keyRotation.cancel();
      drills.close();
      await backups.close();
      await services.close();
      detection.stop();
      cancelFlush();
      await app.close();
      await events.settled();
      await directory.flush();
      await store.close();
      ledger.close();
    },
  };
}

/** The admin credential in <data-dir>/admin.token (sealed); issued at first start or when no longer valid. */
async function bootstrapAdminToken(secrets: SecretFiles, tokens: TokenService): Promise<string> {
  const existing = secrets.readText(adminTokenFileName)?.trim();
  if (existing !== undefined && (await tokens.verify(existing, ["user"])).ok) return existing;
  const issued = await tokens.issue({
    kind: "user",
    subject: "bootstrap-admin",
    roles: [builtinRoles.admin],
    ttlMs: bootstrapAdminTtlMs,
  });
  secrets.write(adminTokenFileName, `${issued.token}\n`);
  return issued.token;
}
