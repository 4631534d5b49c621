// Measures the node's real resource usage: cpu from /proc/stat deltas, memory from
// /proc/meminfo, storage with statfs on the agent's data dir, network from /proc/net/dev
// deltas. Rates need two samples; the first sample reports them as zero.

import { readFile, statfs } from "node:fs/promises";
import type { NodeMetrics } from "../../api/contract.ts";

interface CpuTimes {
  idleTicks: number;
  totalTicks: number;
  cores: number;
}

interface NetworkCounters {
  receiveBytes: number;
  transmitBytes: number;
  atMs: number;
}

export class MetricsUnavailableError extends Error {
  override readonly name = "MetricsUnavailableError";
}

/** Parses the aggregate and per-core lines of /proc/stat. */
export function parseCpuTimes(procStat: string): CpuTimes {
  const lines = procStat.split("\n");
  const aggregate = lines.find((line) => line.startsWith("cpu "));
  if (aggregate === undefined)
    throw new MetricsUnavailableError("/proc/stat has no aggregate cpu line");
  const fields = aggregate.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal; guest time is already inside user.
  const totalTicks = fields
    .slice(0, 8)
    .reduce((sum, value) => sum + (Number.isFinite(value) ? value : 0), 0);
  const idleTicks = (fields[3] ?? 0) + (fields[4] ?? 0);
  const cores = Math.max(1, lines.filter((line) => /^cpu\d+ /.test(line)).length);
  return { idleTicks, totalTicks, cores };
}

/** Parses MemTotal and MemAvailable (kB) from /proc/meminfo into bytes. */
export function parseMemory(procMeminfo: string): { totalBytes: number; usedBytes: number } {
  const kilobytes = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(procMeminfo);
    if (match?.[1] === undefined) throw new MetricsUnavailableError(`/proc/meminfo has no ${key}`);
    return Number(match[1]) * 1024;
  };
  const totalBytes = kilobytes("MemTotal");
  return { totalBytes, usedBytes: Math.max(0, totalBytes - kilobytes("MemAvailable")) };
}

/** Sums received and transmitted bytes over every interface but loopback. */
export function parseNetworkBytes(procNetDev: string): {
  receiveBytes: number;
  transmitBytes: number;
} {
  let receiveBytes = 0;
  let transmitBytes = 0;
  for (const line of procNetDev.split("\n").slice(2)) {
    const [name, counters] = line.split(":");
    if (counters === undefined || name === undefined || name.trim() === "lo") continue;
    const fields = counters.trim().split(/\s+/).map(Number);
    receiveBytes += fields[0] ?? 0;
    transmitBytes += fields[8] ?? 0;
  }
  return { receiveBytes, transmitBytes };
}

const clampFraction = (value: number) => Math.min(1, Math.max(0, value));

export class HostMetrics {
  readonly #dataDir: string;
  #previousCpu: CpuTimes | undefined;
  #previousNetwork: NetworkCounters | undefined;

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
  }

  async sample(atMs: number): Promise<NodeMetrics> {
    const [procStat, procMeminfo, procNetDev, filesystem] = await Promise.all([
      readFile("/proc/stat", "utf8"),
      readFile("/proc/meminfo", "utf8"),
      readFile("/proc/net/dev", "utf8"),
      statfs(this.#dataDir),
    ]);

    const cpu = parseCpuTimes(procStat);
    const previousCpu = this.#previousCpu;
    this.#previousCpu = cpu;
    const elapsedTicks = previousCpu === undefined ? 0 : cpu.totalTicks - previousCpu.totalTicks;
    const busyTicks =
      previousCpu === undefined ? 0 : elapsedTicks - (cpu.idleTicks - previousCpu.idleTicks);
    const cpuFraction = elapsedTicks > 0 ? clampFraction(busyTicks / elapsedTicks) : 0;

    const memory = parseMemory(procMeminfo);
    const storageTotalBytes = filesystem.blocks * filesystem.bsize;
    const storageUsedBytes = (filesystem.blocks - filesystem.bfree) * filesystem.bsize;

    const network = { ...parseNetworkBytes(procNetDev), atMs };
    const previousNetwork = this.#previousNetwork;
    this.#previousNetwork = network;
    const elapsedSeconds =
      previousNetwork === undefined ? 0 : (atMs - previousNetwork.atMs) / 1_000;
    const rate = (current: number, previous: number | undefined) =>
      elapsedSeconds > 0 && previous !== undefined
        ? Math.max(0, (current - previous) / elapsedSeconds)
        : 0;

    return {
      measuredAtMs: atMs,
      cpu: { fraction: cpuFraction, cores: cpu.cores },
      memory: { fraction: clampFraction(memory.usedBytes / memory.totalBytes), ...memory },
      storage: {
        fraction: storageTotalBytes > 0 ? clampFraction(storageUsedBytes / storageTotalBytes) : 0,
        usedBytes: storageUsedBytes,
        totalBytes: storageTotalBytes,
      },
      network: {
        receiveBytesPerSecond: rate(network.receiveBytes, previousNetwork?.receiveBytes),
        transmitBytesPerSecond: rate(network.transmitBytes, previousNetwork?.transmitBytes),
      },
    };
  }
}
