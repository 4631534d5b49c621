// `edgeward repo` on a repository in a local directory: the --workers flag and its bound.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { describeTree, noise, withTemporaryDirectory } from "../../runtime/backup/testing.ts";
import { registerRepoCommands } from "./repo.ts";

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe("edgeward repo --workers", () => {
  it("backs up and restores with the workers asked for, and refuses more than 64", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await mkdir(source);
      await writeFile(join(source, "data.bin"), noise(300_000, 7));
      await writeFile(join(source, "notes.txt"), "restored by lanes\n");
      const passwordFile = join(directory, "password");
      await writeFile(passwordFile, "a long enough password");
      const output: string[] = [];
      vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
        output.push(String(chunk));
        return true;
      });
      vi.spyOn(process.stderr, "write").mockImplementation(() => true);
      const edgeward = async (...commandArguments: string[]) => {
        const program = new Command().exitOverride();
        registerRepoCommands(program);
        await program.parseAsync(
          [
            ...commandArguments,
            "--repo",
            join(directory, "repository"),
            "--password-file",
            passwordFile,
          ],
          { from: "user" },
        );
        expect(process.exitCode ?? 0, commandArguments.join(" ")).toBe(0);
      };
      await edgeward("repo", "init");
      await edgeward("repo", "backup", "--workers", "2", source);
      const target = join(directory, "target");
      output.length = 0;
      await edgeward("repo", "restore", "latest", "--target", target, "--workers", "2", "--json");
      // Less than 64 MiB to write: the calling thread alone, whatever --workers asks.
      expect(JSON.parse(output.join(""))).toMatchObject({ filesRestored: 2, workerThreads: 0 });
      expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
      await expect(
        edgeward("repo", "restore", "latest", "--target", target, "--workers", "65"),
      ).rejects.toThrow("--workers takes at most 64 threads, got 65");
    });
  });
});
