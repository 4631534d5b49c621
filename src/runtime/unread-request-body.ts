// Refusing a request without reading its body. Node keeps a connection alive after an answer
// by reading the rest of the request's body and throwing it away, so a client that sends
// megabytes to a route that refuses it at once would still cost their transfer. Answers that
// leave a body unread close the connection instead: Node stops reading once the answer is out
// (the client may see a reset while it is still writing; the server sees nothing worse).

import type { IncomingMessage, ServerResponse } from "node:http";

/** Whether `request` announced a body that has not been read to its end yet. */
function hasUnreadBody(request: IncomingMessage): boolean {
  if (request.complete) return false;
  const length = request.headers["content-length"];
  return (
    request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
  );
}

/** Call before answering without reading the body: the connection closes after the answer. */
export function closeIfBodyUnread(response: ServerResponse): void {
  if (hasUnreadBody(response.req)) response.setHeader("connection", "close");
}
