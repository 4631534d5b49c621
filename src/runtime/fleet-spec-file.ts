// Reads a fleet spec file from disk and hands its text to the pure parser. Reading is bounded:
// at most one byte more than a spec may have is read, whatever the file (a FIFO, /dev/zero).

import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { FleetSpecError } from "../core/spec/fleet-spec-error.ts";
import type { FleetSpec } from "../core/spec/fleet-spec-schema.ts";
import { fleetSpecBytesMax, parseFleetSpec } from "../core/spec/parse-fleet-spec.ts";

/** Size of each read from the file. */
const readChunkBytes = 64 * 1024;

/** A fleet spec file that cannot be read at all (missing, unreadable, a directory). */
export class FleetSpecFileError extends Error {
  override readonly name = "FleetSpecFileError";
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot read fleet spec ${path}: ${reason}`, options);
  }
}

const reasonsByCode: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory, not a file",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many symbolic links",
};

function readFailure(path: string, error: unknown): FleetSpecFileError {
  const code =
    error instanceof Error && "code" in error && typeof error.code === "string"
      ? error.code
      : undefined;
  const reason =
    (code === undefined ? undefined : reasonsByCode[code]) ??
    (error instanceof Error ? error.message : String(error));
  return new FleetSpecFileError(path, reason, { cause: error });
}

/** The file's bytes, or undefined when it holds more than `bytesMax`. */
async function readAtMost(path: string, bytesMax: number): Promise<Uint8Array | undefined> {
  const handle = await open(path, "r");
  try {
    const buffer = new Uint8Array(bytesMax + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(
        buffer,
        length,
        Math.min(readChunkBytes, buffer.length - length),
      );
      if (bytesRead === 0) return buffer.subarray(0, length);
      length += bytesRead;
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

/** A validated fleet spec and the SHA-256 (hex) of the file's bytes, as the ledger records it. */
export interface FleetSpecFile {
  spec: FleetSpec;
  digest: string;
}

/** Reads and validates the fleet spec at `path`; see {@link readFleetSpecFile}. */
export async function loadFleetSpecFile(path: string): Promise<FleetSpec> {
  return (await readFleetSpecFile(path)).spec;
}

/**
 * Reads and validates the fleet spec at `path`, with the digest of exactly the bytes parsed.
 * Throws {@link FleetSpecFileError} when the file cannot be read, and {@link FleetSpecError}
 * (one line per problem, with line and column) when its content is not a valid fleet spec.
 */
export async function readFleetSpecFile(path: string): Promise<FleetSpecFile> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readAtMost(path, fleetSpecBytesMax);
  } catch (error) {
    throw readFailure(path, error);
  }
  const contentProblem = (message: string) =>
    new FleetSpecError([{ file: path, line: 1, column: 1, path: "", message }]);
  if (bytes === undefined)
    throw contentProblem(
      `expected a fleet spec of at most ${fleetSpecBytesMax} bytes (1 MiB), got a larger file`,
    );
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw contentProblem("expected UTF-8 text, got bytes that are not UTF-8");
  }
  return {
    spec: parseFleetSpec(text, path),
    digest: createHash("sha256").update(bytes).digest("hex"),
  };
}
