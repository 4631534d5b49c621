// Typed HTTP errors: every failure a client can cause maps to a 4xx with a message that says
// what to do; anything else is a bug and becomes a logged 500.

import type { z } from "zod";

export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Formats zod issues as `path: message` lines, the way a person fixes them. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(body)"}: ${issue.message}`)
    .join("; ");
}

/** Parses `value` with `schema` or throws a 400 naming every bad field. */
export function parseOrReject<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  what: string,
): z.infer<Schema> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new HttpError(400, "invalid_request", `invalid ${what}: ${describeIssues(result.error)}`);
  return result.data;
}
