// The typed errors of the service supervisor: operating errors (a bad command, a full disk, a
// stale generation) that reach the server as a failed command's message.

/** What went wrong, for code that reacts to it; the message says it for people. */
export type SupervisorErrorCode =
  | "invalid-definition"
  | "invalid-request"
  | "unknown-service"
  | "fenced"
  | "not-running"
  | "too-many-instances"
  | "data-dir-unavailable"
  | "not-enough-disk"
  | "command-not-found"
  | "start-failed"
  | "start-timeout"
  | "stopped"
  | "hook-failed"
  | "generations-file-damaged";

export class SupervisorError extends Error {
  override readonly name = "SupervisorError";
  constructor(
    readonly code: SupervisorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
