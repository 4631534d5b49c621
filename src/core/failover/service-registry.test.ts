import { describe, expect, it } from "vitest";
import { ServiceRegistry } from "./service-registry.ts";

describe("ServiceRegistry", () => {
  it("routes only the newest generation issued", () => {
    const registry = new ServiceRegistry();
    expect(registry.issueGeneration("svc")).toBe(1);
    expect(registry.issueGeneration("svc")).toBe(2);
    expect(registry.route("svc", { nodeId: "a", endpoint: "h:1", generation: 1 })).toEqual({
      kind: "stale",
      newestGeneration: 2,
    });
    expect(registry.resolve("svc")).toBeUndefined();
    expect(registry.route("svc", { nodeId: "b", endpoint: "h:2", generation: 2 })).toEqual({
      kind: "routed",
    });
    expect(registry.resolve("svc")).toEqual({ nodeId: "b", endpoint: "h:2", generation: 2 });
  });

  it("clears the route when a newer generation is issued (the old instance is fenced)", () => {
    const registry = new ServiceRegistry();
    registry.issueGeneration("svc");
    registry.route("svc", { nodeId: "a", endpoint: "h:1", generation: 1 });
    registry.issueGeneration("svc");
    expect(registry.resolve("svc")).toBeUndefined();
    expect(registry.entry("svc")?.generation).toBe(2);
  });

  it("unroutes only the generation it is asked to", () => {
    const registry = new ServiceRegistry();
    registry.issueGeneration("svc");
    registry.route("svc", { nodeId: "a", endpoint: "h:1", generation: 1 });
    expect(registry.unroute("svc", 0)).toBe(false);
    expect(registry.resolve("svc")?.generation).toBe(1);
    expect(registry.unroute("svc", 1)).toBe(true);
    expect(registry.resolve("svc")).toBeUndefined();
  });

  it("survives a round trip through JSON", () => {
    const registry = new ServiceRegistry();
    registry.issueGeneration("routed");
    registry.route("routed", { nodeId: "a", endpoint: "h:1", generation: 1 });
    registry.issueGeneration("unrouted");
    const restored = ServiceRegistry.restore(
      JSON.parse(JSON.stringify(registry.snapshot())) as ReturnType<ServiceRegistry["snapshot"]>,
    );
    expect([...restored.entries()]).toEqual([...registry.entries()]);
  });
});
