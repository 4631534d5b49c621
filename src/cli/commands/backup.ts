// `edgeward backup run|list|restore|verify`: the fleet's backups as the server catalogues
// them (the standalone engine is `edgeward repo`). Each command is a function of (client,
// arguments, output) returning an exit code, so tests call them against a real server.

import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import type {
  BackupListResponse,
  BackupRestoreResponse,
  BackupRunResponse,
  BackupVerifyResponse,
} from "../../api/contract.ts";
import { ApiClient, resolveServerUrl, type ServerSelection } from "../api-client.ts";
import { formatBytes } from "../../runtime/backup/progress.ts";
import { exitWith, processOutput, withServerOptions, type CommandOutput } from "../command-io.ts";

/** Backups, restores and checks can take long: the CLI waits this long for the server. */
export const backupRequestTimeoutMs = 60 * 60_000;
/** Reads answer fast. */
export const backupReadTimeoutMs = 10_000;

const levels = ["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL", "CLOUD"] as const;

/** The backup routes of the API, through the CLI's client (credentials, the fleet's CA). */
export class BackupApi {
  constructor(readonly client: ApiClient) {}

  list(): Promise<BackupListResponse> {
    return this.client.getJson("/v1/backups", backupReadTimeoutMs);
  }

  run(body: { policy: string; level?: string; node?: string }): Promise<BackupRunResponse> {
    return this.client.postJson("/v1/backups/run", body, backupRequestTimeoutMs);
  }

  restore(
    snapshot: string,
    body: { target?: string; service?: string; node?: string },
  ): Promise<BackupRestoreResponse> {
    return this.client.postJson(
      `/v1/backups/${encodeURIComponent(snapshot)}/restore`,
      body,
      backupRequestTimeoutMs,
    );
  }

  verify(readData: boolean): Promise<BackupVerifyResponse> {
    return this.client.postJson("/v1/backups/verify", { readData }, backupRequestTimeoutMs);
  }
}

const printJson = (output: CommandOutput, value: unknown) =>
  output.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

function age(nowMs: number, atMs: number): string {
  const seconds = Math.max(0, Math.round((nowMs - atMs) / 1_000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)}h ago`;
  return `${Math.round(seconds / 86_400)}d ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? "").length)),
  );
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths?.[column] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export async function listCommand(
  api: BackupApi,
  options: { json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const list = await api.list();
  if (options.json === true) {
    printJson(output, list);
    return 0;
  }
  if (list.snapshots.length === 0) output.stdout.write("no backups yet\n");
  else
    output.stdout.write(
      `${table([
        ["SNAPSHOT", "POLICY", "LEVEL", "NODE", "TAKEN", "SIZE", "ADDED", "DATA TYPES"],
        ...list.snapshots.map((snapshot) => [
          snapshot.snapshotId.slice(0, 12),
          snapshot.policy,
          snapshot.level,
          snapshot.node,
          age(list.serverTimeMs, snapshot.atMs),
          formatBytes(snapshot.sizeBytes),
          formatBytes(snapshot.addedBytes),
          snapshot.dataTypes.join(","),
        ]),
      ])}\n`,
    );
  for (const failure of list.failures)
    output.stdout.write(
      `FAILING ${failure.policy} ${failure.level} on ${failure.node} (${age(list.serverTimeMs, failure.atMs)}): ${failure.reason}\n`,
    );
  return 0;
}

export async function runCommand(
  api: BackupApi,
  policy: string,
  options: { level?: string; node?: string; json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const answer = await api.run({
    policy,
    ...(options.level === undefined ? {} : { level: options.level }),
    ...(options.node === undefined ? {} : { node: options.node }),
  });
  if (options.json === true) printJson(output, answer);
  else {
    const rows = answer.results.flatMap((result) =>
      result.levels.map((level) => [result.node, level.level, ...levelCells(level)]),
    );
    if (rows.length > 0)
      output.stdout.write(
        `${table([["NODE", "LEVEL", "DONE", "SNAPSHOT", "SIZE", "STORED", "TIME", "NOTE"], ...rows])}\n`,
      );
    for (const result of answer.results)
      if (result.message !== null && (!result.ok || result.levels.length === 0))
        output.stdout.write(`${result.node}  ${result.ok ? "" : "FAILED: "}${result.message}\n`);
  }
  return answer.results.every((result) => result.ok) ? 0 : 1;
}

/** One level of a run: what was done, the snapshot, sizes, duration and a note. */
function levelCells(level: BackupRunResponse["results"][number]["levels"][number]): string[] {
  const seconds = `${(level.durationMs / 1_000).toFixed(1)}s`;
  switch (level.outcome) {
    case "backup":
      return [
        "backup",
        level.snapshotId?.slice(0, 12) ?? "",
        formatBytes(level.sizeBytes),
        `${formatBytes(level.addedBytes)} new`,
        seconds,
        "read from the sources",
      ];
    case "copy":
      return [
        `copy of ${level.fromLevel ?? "?"}`,
        level.snapshotId?.slice(0, 12) ?? "",
        formatBytes(level.sizeBytes),
        `${formatBytes(level.addedBytes)} copied`,
        seconds,
        `${level.blobsCopied} blobs`,
      ];
    case "skipped":
      return ["skipped", "", "", "", "", level.message ?? ""];
    case "failed":
      return ["FAILED", "", "", "", "", level.message ?? ""];
  }
}

export async function restoreCommand(
  api: BackupApi,
  snapshot: string,
  options: { target?: string; service?: string; node?: string; json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const answer = await api.restore(snapshot, {
    ...(options.target === undefined ? {} : { target: options.target }),
    ...(options.service === undefined ? {} : { service: options.service }),
    ...(options.node === undefined ? {} : { node: options.node }),
  });
  if (options.json === true) printJson(output, answer);
  else
    output.stdout.write(
      answer.ok
        ? `restored snapshot ${answer.snapshotId.slice(0, 12)} on ${answer.node}: ${answer.filesRestored} files, ${formatBytes(answer.bytesRestored)}${answer.message === null ? "" : ` (${answer.message})`}\n`
        : `restore on ${answer.node} FAILED: ${answer.message ?? "no reason given"}\n`,
    );
  return answer.ok ? 0 : 1;
}

export async function verifyCommand(
  api: BackupApi,
  options: { readData?: boolean; json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const answer = await api.verify(options.readData === true);
  if (options.json === true) printJson(output, answer);
  else {
    for (const report of answer.reports)
      output.stdout.write(
        `${report.ok ? "ok    " : "FAILED"}  ${report.node}  ${report.level}  ${report.snapshots} snapshots, ${report.packsRead} packs read${report.errors.length === 0 ? "" : `\n        ${report.errors.join("\n        ")}`}\n`,
      );
    for (const node of answer.unreachable)
      output.stdout.write(`FAILED  ${node.node}  not verified: ${node.message ?? "no answer"}\n`);
  }
  return answer.ok ? 0 : 1;
}

function parseSnapshotId(value: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(value))
    throw new InvalidArgumentError("expected a snapshot id (8 to 64 hex characters)");
  return value;
}

const apiOf = (selection: ServerSelection) =>
  new BackupApi(new ApiClient(resolveServerUrl(selection)));

export function registerBackupCommands(program: Command): void {
  const backup = program
    .command("backup")
    .summary("run, list, restore and verify the fleet's backups")
    .description(
      "The fleet's scheduled, multi-tier backups (SPEC §4). Agents back up the data of the " +
        "spec's backup policies on each level's interval into one repository per node and tier " +
        "(EDGE_LOCAL: the node's disk; EDGE_CLUSTER: erasure-coded over the peer agents; " +
        "REGIONAL: the server's --blob-dir; CLOUD: S3) and the server catalogues every snapshot " +
        "and expires them by retentionDays. For a repository on its own, see `edgeward repo`.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  edgeward backup run production_data --level EDGE_CLUSTER\n" +
        "  edgeward backup list --json | jq '.snapshots[0]'\n" +
        "  edgeward backup restore 3f9a1c2b --service quality_control\n" +
        "  edgeward backup restore 3f9a1c2b --target /srv/restore --node factory-1-line-a-edge-2\n" +
        "  edgeward backup verify --read-data\n\n" +
        "Exit codes: 0 success, 1 a failure (a node's backup, restore or check failed, or the server refused).",
    );

  withServerOptions(
    backup
      .command("run")
      .description(
        "Backs a policy up now, on every connected node (each backs up the policy's data it " +
          "holds) or on --node. At every level of the policy, the data is read once: backed up " +
          "to the first tier that takes it (EDGE_LOCAL, EDGE_CLUSTER, REGIONAL, CLOUD) and that " +
          "snapshot copied to the other tiers; a tier that is down gets the copy later. With " +
          "--level, only that level, backed up directly. Prints per node and level whether it " +
          "was a backup or a copy, the snapshot, its size, the bytes stored and the time.",
      )
      .argument("<policy>", "backup policy name, as in the fleet spec"),
  )
    .addOption(new Option("--level <level>", "only this level").choices(levels))
    .option("--node <node>", "only this node")
    .option("--json", "print the server's answer as JSON")
    .action(
      async (
        policy: string,
        options: ServerSelection & { level?: string; node?: string; json?: boolean },
      ) => exitWith(() => runCommand(apiOf(options), policy, options, processOutput)),
    );

  withServerOptions(
    backup
      .command("list")
      .description(
        "Lists the catalogued snapshots, newest first (id, policy, level, node, age, size, bytes " +
          "added, data types), and each (node, policy, level) whose last backup failed.",
      ),
  )
    .option("--json", "print the catalogue (GET /v1/backups) as JSON")
    .action(async (options: ServerSelection & { json?: boolean }) =>
      exitWith(() => listCommand(apiOf(options), options, processOutput)),
    );

  withServerOptions(
    backup
      .command("restore")
      .description(
        "Restores a snapshot (id or unique prefix from `backup list`): into DIR on the node " +
          "(--target; default node: the snapshot's), or into a service's data dir on the node " +
          "serving it (--service; only that service's data). Every blob is authenticated before " +
          "it is written; the old contents are replaced only once the restore succeeded. Stop " +
          "or fail the service over first: a running instance keeps its open files.",
      )
      .argument("<snapshot>", "snapshot id or unique prefix (8+ hex characters)", parseSnapshotId),
  )
    .option("--target <dir>", "directory on the node to restore into")
    .option("--service <name>", "restore into this service's data dir")
    .option("--node <node>", "restore on this node instead")
    .option("--json", "print the server's answer as JSON")
    .action(
      async (
        snapshot: string,
        options: ServerSelection & {
          target?: string;
          service?: string;
          node?: string;
          json?: boolean;
        },
      ) => {
        if ((options.target === undefined) === (options.service === undefined))
          throw new InvalidArgumentError("give exactly one of --target DIR or --service NAME");
        await exitWith(() => restoreCommand(apiOf(options), snapshot, options, processOutput));
      },
    );

  withServerOptions(
    backup
      .command("verify")
      .description(
        "Checks every node's repositories on every level its policies use: structure, and with " +
          "--read-data every pack's bytes. Fails naming each damaged object.",
      ),
  )
    .option("--read-data", "read and authenticate every pack (slow)")
    .option("--json", "print the reports as JSON")
    .action(async (options: ServerSelection & { readData?: boolean; json?: boolean }) =>
      exitWith(() => verifyCommand(apiOf(options), options, processOutput)),
    );
}
