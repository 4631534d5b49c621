// Where each service lives now: the table routing reads (proxies, `resolve`). Fencing lives
// here too: a service's generations are issued here, only ever grow, and only the newest one
// issued may be routed to, so an older instance can never become reachable again.

/** Most services the registry tracks, so a runaway spec cannot exhaust memory. */
export const registeredServicesMax = 100_000;

/** Where clients of a service are sent. */
export interface ServiceRoute {
  readonly nodeId: string;
  /** host:port the service instance listens on. */
  readonly endpoint: string;
  readonly generation: number;
}

/**
 * One service: the newest generation issued, and the route if an instance of that generation
 * serves it now (a route always carries the newest generation).
 */
export interface RegistryEntry {
  readonly generation: number;
  readonly route: ServiceRoute | undefined;
}

/** The registry as JSON: `route` null when nothing serves the service. */
export interface ServiceRegistrySnapshot {
  readonly services: Readonly<Record<string, { generation: number; route: ServiceRoute | null }>>;
}

export type RouteOutcome =
  | { readonly kind: "routed" }
  /** A generation older than the newest issued: never routed to (fencing). */
  | { readonly kind: "stale"; readonly newestGeneration: number };

export class RegistryCapacityError extends Error {
  override readonly name = "RegistryCapacityError";
}

/** What routing may read; only the orchestrator changes the registry. */
export interface ServiceRegistryView {
  resolve(service: string): ServiceRoute | undefined;
  entry(service: string): RegistryEntry | undefined;
  entries(): IterableIterator<[string, RegistryEntry]>;
}

export class ServiceRegistry implements ServiceRegistryView {
  readonly #entries = new Map<string, RegistryEntry>();

  static restore(snapshot: ServiceRegistrySnapshot): ServiceRegistry {
    const registry = new ServiceRegistry();
    for (const [service, entry] of Object.entries(snapshot.services)) {
      registry.#entries.set(service, {
        generation: entry.generation,
        route: entry.route ?? undefined,
      });
    }
    return registry;
  }

  snapshot(): ServiceRegistrySnapshot {
    const services: Record<string, { generation: number; route: ServiceRoute | null }> = {};
    for (const [service, entry] of this.#entries) {
      services[service] = { generation: entry.generation, route: entry.route ?? null };
    }
    return { services };
  }

  resolve(service: string): ServiceRoute | undefined {
    return this.#entries.get(service)?.route;
  }

  entry(service: string): RegistryEntry | undefined {
    return this.#entries.get(service);
  }

  entries(): IterableIterator<[string, RegistryEntry]> {
    return this.#entries.entries();
  }

  /**
   * A new generation for the next instance of `service`, above every one issued before.
   * Issuing fences every older instance, so the route to it is cleared.
   */
  issueGeneration(service: string): number {
    const entry = this.#entries.get(service);
    if (entry === undefined && this.#entries.size >= registeredServicesMax) {
      throw new RegistryCapacityError(
        `the registry holds ${registeredServicesMax} services, the most it may; ${JSON.stringify(service)} was refused`,
      );
    }
    const generation = (entry?.generation ?? 0) + 1;
    this.#entries.set(service, { generation, route: undefined });
    return generation;
  }

  /** Points `service` at `route`, unless a newer generation has been issued since. */
  route(service: string, route: ServiceRoute): RouteOutcome {
    const entry = this.#entries.get(service);
    const newestGeneration = entry?.generation ?? 0;
    if (route.generation !== newestGeneration) return { kind: "stale", newestGeneration };
    this.#entries.set(service, { generation: newestGeneration, route });
    return { kind: "routed" };
  }

  /** Stops routing to `generation` of `service`; a route to another generation is left alone. */
  unroute(service: string, generation: number): boolean {
    const entry = this.#entries.get(service);
    if (entry?.route?.generation !== generation) return false;
    this.#entries.set(service, { generation: entry.generation, route: undefined });
    return true;
  }
}
