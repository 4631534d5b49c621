// Where the CLOUD tier lives and with which credentials: `--cloud-repo s3://…` (credentials
// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), else the spec's backup.tiers.cloud
// (credentials from the variables or file it names). Agents receive the result over their
// channel; without credentials the tier is skipped with a warning.

import { readFileSync } from "node:fs";
import type { BackupSpec } from "../../core/spec/backup-schema.ts";
import type { CloudTarget } from "./backup-control.ts";

export function cloudTargetOf(
  spec: BackupSpec | undefined,
  cloudRepo: string | undefined,
  environment: Readonly<Record<string, string | undefined>>,
): { target: CloudTarget | null; warning: string | null } {
  const region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1";
  if (cloudRepo !== undefined) {
    const accessKeyId = environment["AWS_ACCESS_KEY_ID"];
    const secretAccessKey = environment["AWS_SECRET_ACCESS_KEY"];
    if (accessKeyId === undefined || secretAccessKey === undefined)
      return {
        target: null,
        warning: "--cloud-repo needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; CLOUD is skipped",
      };
    return { target: { url: cloudRepo, region, accessKeyId, secretAccessKey }, warning: null };
  }
  const cloud = spec?.tiers.cloud;
  if (cloud === undefined) return { target: null, warning: null };
  const endpoint = new URL(cloud.endpoint);
  const scheme = endpoint.protocol === "http:" ? "s3+http" : "s3+https";
  const prefix = cloud.prefix.replace(/^\/+|\/+$/g, "");
  const url = `${scheme}://${endpoint.host}/${cloud.bucket}${prefix === "" ? "" : `/${prefix}`}`;
  let accessKeyId: string | undefined;
  let secretAccessKey: string | undefined;
  if (cloud.credentials.source === "environment") {
    accessKeyId = environment[cloud.credentials.accessKeyIdVariable];
    secretAccessKey = environment[cloud.credentials.secretAccessKeyVariable];
  } else {
    try {
      const parsed = JSON.parse(readFileSync(cloud.credentials.path, "utf8")) as {
        accessKeyId?: unknown;
        secretAccessKey?: unknown;
      };
      if (typeof parsed.accessKeyId === "string") accessKeyId = parsed.accessKeyId;
      if (typeof parsed.secretAccessKey === "string") secretAccessKey = parsed.secretAccessKey;
    } catch {
      // Reported below as missing credentials.
    }
  }
  if (accessKeyId === undefined || secretAccessKey === undefined)
    return {
      target: null,
      warning: `the spec's CLOUD tier (${url}) has no credentials in this server's environment; CLOUD backups are skipped`,
    };
  return { target: { url, region: cloud.region, accessKeyId, secretAccessKey }, warning: null };
}
