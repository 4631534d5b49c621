import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { HostMetrics, parseCpuTimes, parseMemory, parseNetworkBytes } from "./host-metrics.ts";

describe("host metric parsers", () => {
  it("reads cpu ticks and counts cores from /proc/stat", () => {
    const stat =
      "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
    expect(parseCpuTimes(stat)).toEqual({ idleTicks: 850, totalTicks: 1000, cores: 2 });
  });

  it("reads total and available memory from /proc/meminfo", () => {
    const meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";
    expect(parseMemory(meminfo)).toEqual({ totalBytes: 1_024_000, usedBytes: 768_000 });
  });

  it("sums network bytes over every interface but loopback", () => {
    const dev = [
      "Inter-|   Receive |  Transmit",
      " face |bytes packets errs drop fifo frame compressed multicast|bytes packets",
      "    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0",
      "  eth0: 100 1 0 0 0 0 0 0 200 1 0 0 0 0 0 0",
      "  eth1: 10 1 0 0 0 0 0 0 20 1 0 0 0 0 0 0",
    ].join("\n");
    expect(parseNetworkBytes(dev)).toEqual({ receiveBytes: 110, transmitBytes: 220 });
  });

  it("samples this machine for real", async () => {
    const metrics = new HostMetrics(tmpdir());
    await metrics.sample(1_000);
    const sample = await metrics.sample(2_000);
    expect(sample.cpu.cores).toBeGreaterThanOrEqual(1);
    expect(sample.memory.totalBytes).toBeGreaterThan(0);
    expect(sample.storage.totalBytes).toBeGreaterThan(0);
    expect(sample.cpu.fraction).toBeGreaterThanOrEqual(0);
    expect(sample.cpu.fraction).toBeLessThanOrEqual(1);
  });
});
