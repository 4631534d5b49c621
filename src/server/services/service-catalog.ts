// The fleet spec's services as the server hands them out: the definition an agent needs to run
// each one, and the service as the failover orchestrator sees it.

import type { ServiceDefinition } from "../../api/service-messages.ts";
import { failoverServiceFromSpec } from "../../core/failover/failover-protocol.ts";
import type { FailoverService } from "../../core/failover/failover-protocol.ts";
import type { ServiceSpec } from "../../core/spec/service-schema.ts";

const bytesPerGb = 1024 ** 3;

export interface CatalogEntry {
  readonly spec: ServiceSpec;
  readonly definition: ServiceDefinition;
  readonly failover: FailoverService;
}

export type ServiceCatalog = ReadonlyMap<string, CatalogEntry>;

export function definitionFromSpec(spec: ServiceSpec): ServiceDefinition {
  return {
    name: spec.name,
    command: [...spec.command],
    env: { ...spec.env },
    port: spec.port ?? null,
    healthCheck: spec.healthCheck === undefined ? null : structuredClone(spec.healthCheck),
    dataDir: spec.dataDir ?? null,
    restartAttempts: spec.restart.attempts,
    storageBytes: Math.round(spec.resources.storageGb * bytesPerGb),
  };
}

export function serviceCatalogFromSpec(services: readonly ServiceSpec[]): ServiceCatalog {
  return new Map(
    services.map((spec) => [
      spec.name,
      { spec, definition: definitionFromSpec(spec), failover: failoverServiceFromSpec(spec) },
    ]),
  );
}
