// Node ids: DNS-label style, so they are safe in URLs, file names and metrics labels. Kept
// free of zod so that an agent process, which checks little else, does not load it.

export const nodeIdPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const nodeIdRule = "expected a node id: 1-63 lowercase letters, digits and '-'";

export function isNodeId(value: unknown): value is string {
  return typeof value === "string" && nodeIdPattern.test(value);
}
