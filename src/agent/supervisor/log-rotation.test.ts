import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RotatingLogWriter, type LogRotationOptions } from "./log-rotation.ts";
import { TemporaryDirectories } from "./supervisor-test-support.ts";

const directories = new TemporaryDirectories();
afterEach(() => directories.removeAll());

/** A 30-byte line: "line-07" padded with dots, then a newline. */
function line(index: number): string {
  return `line-${String(index).padStart(2, "0")}`.padEnd(29, ".") + "\n";
}

async function writeAll(path: string, options: LogRotationOptions, chunks: string[]) {
  const errors: Error[] = [];
  const writer = new RotatingLogWriter(path, options, (error) => errors.push(error));
  for (const chunk of chunks) writer.write(Buffer.from(chunk));
  await new Promise<void>((resolve) => writer.end(() => resolve()));
  return errors;
}

function read(path: string): string {
  return readFileSync(path, "utf8");
}

describe("RotatingLogWriter", () => {
  it("rotates at whole lines and keeps only filesKept old files", async () => {
    const path = join(directories.create("log"), "logs", "service.log");
    const lines = Array.from({ length: 10 }, (_, index) => line(index + 1));
    const errors = await writeAll(path, { fileBytesMax: 100, filesKept: 2 }, lines);
    expect(errors).toEqual([]);
    expect(read(path)).toBe(line(10));
    expect(read(`${path}.1`)).toBe(line(7) + line(8) + line(9));
    expect(read(`${path}.2`)).toBe(line(4) + line(5) + line(6));
    expect(existsSync(`${path}.3`)).toBe(false);
  });

  it("splits a chunk at its newlines and a line longer than a file by size", async () => {
    const path = join(directories.create("log"), "service.log");
    const long = "x".repeat(250);
    await writeAll(path, { fileBytesMax: 100, filesKept: 4 }, [
      line(1) + line(2) + line(3) + line(4),
      long,
    ]);
    // Line 4 starts a new file; the long line does not fit beside it, so it starts another
    // and is cut by size only because it is longer than a whole file.
    expect(read(`${path}.4`)).toBe(line(1) + line(2) + line(3));
    expect(read(`${path}.3`)).toBe(line(4));
    expect(read(`${path}.2`)).toBe("x".repeat(100));
    expect(read(`${path}.1`)).toBe("x".repeat(100));
    expect(read(path)).toBe("x".repeat(50));
  });

  it("continues an existing file and counts its size", async () => {
    const path = join(directories.create("log"), "service.log");
    writeFileSync(path, line(1) + line(2));
    await writeAll(path, { fileBytesMax: 100, filesKept: 1 }, [line(3), line(4)]);
    expect(read(`${path}.1`)).toBe(line(1) + line(2) + line(3));
    expect(read(path)).toBe(line(4));
  });

  it("drops old output when no old files are kept", async () => {
    const path = join(directories.create("log"), "service.log");
    await writeAll(path, { fileBytesMax: 60, filesKept: 0 }, [line(1), line(2), line(3)]);
    expect(read(path)).toBe(line(3));
    expect(existsSync(`${path}.1`)).toBe(false);
  });

  it("reports a write error and keeps accepting output", async () => {
    const file = join(directories.create("log"), "not-a-directory");
    writeFileSync(file, "");
    const errors = await writeAll(join(file, "service.log"), { fileBytesMax: 100, filesKept: 1 }, [
      line(1),
      line(2),
    ]);
    expect(errors.length).toBe(2);
  });
});
