// What a fleet spec tells the server: the nodes allowed to register and their attributes,
// and the detector preset.

import { detectorOptionsFor, type DetectorOptions } from "../core/membership/detector-options.ts";
import type { FleetSpec } from "../core/spec/fleet-spec-schema.ts";
import type { DeclaredNode } from "./node-directory.ts";

export function declaredNodesFromSpec(spec: FleetSpec): Map<string, DeclaredNode> {
  return new Map(
    spec.nodes.map((node) => [
      node.id,
      {
        zone: node.zone,
        tier: node.tier,
        capabilities: [...node.capabilities],
        labels: { ...node.labels },
        quotas: { ...node.quotas },
      },
    ]),
  );
}

export function detectorOptionsFromSpec(spec: FleetSpec): DetectorOptions {
  return detectorOptionsFor(spec.detection.preset, spec.detection.overrides);
}
