// The aggregator of security reports, on a virtual clock: what a flood costs the channel.

import { describe, expect, it } from "vitest";
import { VirtualClock } from "../sim/virtual-clock.ts";
import {
  SecurityReportAggregator,
  securityReportDefaults,
  type SecurityReportOptions,
} from "./security-report-aggregator.ts";

const noEvents = { handleEvent: () => {} };

interface Refusal {
  source: string;
  at: number;
}

function aggregatorWith(options: Partial<SecurityReportOptions> = {}) {
  const clock = new VirtualClock(1_000_000);
  const sent: { source: string; at: number; count: number }[] = [];
  const channel = { up: true };
  const aggregator = new SecurityReportAggregator<Refusal>(
    { ...securityReportDefaults, ...options },
    {
      clock,
      keyOf: (refusal) => refusal.source,
      send: (refusal, count) => {
        if (!channel.up) return false;
        sent.push({ ...refusal, count });
        return true;
      },
    },
  );
  const advance = (ms: number) => clock.runUntil(clock.nowMs() + ms, noEvents);
  const total = () => sent.reduce((sum, report) => sum + report.count, 0);
  return { aggregator, sent, channel, advance, total };
}

describe("security report aggregator", () => {
  it("turns a flood of 10,000 refusals into at most reportsPerWindowMax messages per window, none lost", () => {
    const { aggregator, sent, advance, total } = aggregatorWith();
    for (let at = 0; at < 10_000; at += 1) aggregator.add({ source: "ip:10.0.0.9", at });
    // The first refusals of a quiet window go out at once, one message each; the rest wait.
    expect(sent).toHaveLength(securityReportDefaults.reportsPerWindowMax);
    expect(aggregator.pendingCount).toBe(10_000 - securityReportDefaults.reportsPerWindowMax);
    advance(securityReportDefaults.windowMs);
    expect(sent).toHaveLength(securityReportDefaults.reportsPerWindowMax + 1);
    // The summed report carries the newest refusal and how many it stands for.
    expect(sent.at(-1)).toEqual({ source: "ip:10.0.0.9", at: 9_999, count: 9_990 });
    expect(total()).toBe(10_000);
    expect(aggregator.pendingCount).toBe(0);
  });

  it("sums per key, oldest key first, and keeps keys apart", () => {
    const { aggregator, sent, advance } = aggregatorWith({ reportsPerWindowMax: 1 });
    for (const source of ["a", "b", "a", "c", "b", "a"]) aggregator.add({ source, at: 0 });
    expect(sent.map((report) => [report.source, report.count])).toEqual([["a", 1]]);
    advance(securityReportDefaults.windowMs);
    advance(securityReportDefaults.windowMs);
    advance(securityReportDefaults.windowMs);
    expect(sent.map((report) => [report.source, report.count])).toEqual([
      ["a", 1],
      ["b", 2],
      ["a", 2],
      ["c", 1],
    ]);
  });

  it("holds at most keysMax keys: refusals of further sources are summed into one report", () => {
    const { aggregator, sent, advance, total } = aggregatorWith({
      reportsPerWindowMax: 1,
      keysMax: 3,
    });
    aggregator.add({ source: "first", at: 0 });
    for (let index = 0; index < 1_000; index += 1)
      aggregator.add({ source: `ip:${index}`, at: index });
    // One sent at once, then 3 keys held and everything beyond them in the overflow report.
    let windows = 0;
    while (aggregator.pendingCount > 0 && windows < 10) {
      advance(securityReportDefaults.windowMs);
      windows += 1;
    }
    expect(windows).toBe(4);
    expect(sent.map((report) => report.source)).toEqual([
      "first",
      "ip:0",
      "ip:1",
      "ip:2",
      "ip:999",
    ]);
    expect(sent.at(-1)?.count).toBe(997);
    expect(total()).toBe(1_001);
  });

  it("keeps counting while the channel is down and sends the sum when it is back", () => {
    const { aggregator, sent, channel, advance, total } = aggregatorWith();
    channel.up = false;
    for (let at = 0; at < 50; at += 1) aggregator.add({ source: "x", at });
    advance(securityReportDefaults.windowMs * 3);
    expect(sent).toEqual([]);
    channel.up = true;
    advance(securityReportDefaults.windowMs);
    expect(sent).toEqual([{ source: "x", at: 49, count: 50 }]);
    expect(total()).toBe(50);
  });

  it("stops its timer on close; what is pending stays counted", () => {
    const { aggregator, sent, advance } = aggregatorWith({ reportsPerWindowMax: 1 });
    aggregator.add({ source: "x", at: 0 });
    aggregator.add({ source: "x", at: 1 });
    aggregator.close();
    advance(securityReportDefaults.windowMs * 2);
    expect(sent).toHaveLength(1);
    expect(aggregator.pendingCount).toBe(1);
  });
});
