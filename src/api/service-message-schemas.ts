// zod schemas for the service messages agents send (src/api/service-messages.ts): the server
// validates every one at the edge before it reaches the failover runtime.

import { z } from "zod";
import {
  commandMessageCharactersMax,
  instancesPerAgentMax,
  type AgentServiceMessage,
} from "./service-messages.ts";

const serviceNameSchema = z.string().min(1).max(128);
const generationSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const messageSchema = z.string().max(commandMessageCharactersMax);
const endpointSchema = z.string().regex(/^[^\s/]{1,253}:\d{1,5}$/, "expected host:port");

const instanceStatusSchema = z.strictObject({
  service: serviceNameSchema,
  generation: generationSchema,
  state: z.enum(["starting", "running", "unhealthy", "restarting", "failed", "stopped"]),
  endpoint: endpointSchema.nullable(),
  pid: z.number().int().min(1).nullable(),
  restarts: z.number().int().min(0),
  lastError: messageSchema.nullable(),
});

export const agentServiceMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("command-result"),
    id: z.number().int().min(0),
    ok: z.boolean(),
    message: messageSchema.optional(),
    endpoint: endpointSchema.optional(),
    dataAgeMs: z.number().int().min(0).optional(),
  }),
  z.strictObject({
    type: z.literal("instances"),
    instances: z.array(instanceStatusSchema).max(instancesPerAgentMax),
  }),
  z.strictObject({
    type: z.literal("instance-failed"),
    service: serviceNameSchema,
    generation: generationSchema,
    reason: messageSchema,
  }),
  z.strictObject({
    type: z.literal("proxies"),
    ports: z
      .record(serviceNameSchema, z.number().int().min(1).max(65_535))
      .refine((ports) => Object.keys(ports).length <= instancesPerAgentMax, {
        error: `expected at most ${instancesPerAgentMax} proxies`,
      }),
  }),
]) satisfies z.ZodType<AgentServiceMessage>;

export const serviceMessageTypes: ReadonlySet<string> = new Set([
  "command-result",
  "instances",
  "instance-failed",
  "proxies",
]);
