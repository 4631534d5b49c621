import type { FastifyInstance } from "fastify";
import { eventQuerySchema, type EventListResponse, type FleetEvent } from "../../api/contract.ts";
import type { ControlPlane } from "../control-plane.ts";
import { TooManySubscribersError } from "../event-log.ts";
import { HttpError, parseOrReject } from "../http-error.ts";
import { LiveSessionsFullError } from "../live-sessions.ts";

/** A slow reader is cut off rather than buffered without bound. */
export const eventStreamBufferedBytesMax = 1024 * 1024;
const keepAliveIntervalMs = 15_000;
const backlogPageSize = 1_000;

export function registerEventRoutes(app: FastifyInstance, plane: ControlPlane): void {
  const events = plane.components.events;

  app.get(
    "/v1/events",
    { config: { access: { resource: "events", action: "read" } } },
    async (request): Promise<EventListResponse> => {
      const query = parseOrReject(eventQuerySchema, request.query, "query");
      await events.settled();
      const page = await events.read(query.afterId, query.limit);
      return { events: page, lastId: page.at(-1)?.id ?? query.afterId };
    },
  );

  // Server-sent events: the backlog after `afterId`, then every new event as it is stored.
  app.get(
    "/v1/events/stream",
    { config: { access: { resource: "events", action: "read" } } },
    async (request, reply) => {
      const query = parseOrReject(eventQuerySchema, request.query, "query");
      // A HEAD answer has no body, so a stream would hold the connection and a subscriber open
      // with nothing to send.
      if (request.method === "HEAD")
        return reply.code(200).header("content-type", "text/event-stream").send();
      const live: FleetEvent[] = [];
      let backlogDone = false;
      let lastSentId = query.afterId;
      const raw = reply.raw;
      const send = (event: FleetEvent) => {
        if (event.id <= lastSentId || raw.destroyed) return;
        lastSentId = event.id;
        raw.write(`id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`);
        if (raw.writableLength > eventStreamBufferedBytesMax) raw.destroy();
      };
      let unsubscribe: () => void;
      let releaseSession: () => void = () => {};
      try {
        // A revoked credential ends its stream at once, not at the next reconnect.
        if (request.principal !== undefined)
          releaseSession = app.accessGuard.holdSession(request.principal, () => raw.end());
        unsubscribe = events.subscribe((event) => (backlogDone ? send(event) : live.push(event)));
      } catch (error) {
        releaseSession();
        if (error instanceof TooManySubscribersError || error instanceof LiveSessionsFullError)
          throw new HttpError(429, "too_many_streams", error.message);
        throw error;
      }
      reply.hijack();
      raw.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
      });
      // Node holds the headers until the first write; a quiet fleet would leave the client
      // waiting for the first keep-alive (15 s) to learn that the stream is open.
      raw.flushHeaders();
      const keepAlive = setInterval(() => raw.write(": keep-alive\n\n"), keepAliveIntervalMs);
      raw.on("close", () => {
        clearInterval(keepAlive);
        releaseSession();
        unsubscribe();
      });
      try {
        await events.settled();
        for (;;) {
          const page = await events.read(lastSentId, backlogPageSize);
          for (const event of page) send(event);
          if (page.length < backlogPageSize || raw.destroyed) break;
        }
      } finally {
        backlogDone = true;
        for (const event of live.splice(0)) send(event);
      }
    },
  );
}
