// The agent's paced channel sender, on a virtual clock and a fake socket.

import { describe, expect, it } from "vitest";
import { agentChannelBudgetDefaults } from "../core/security/agent-channel-budget.ts";
import { VirtualClock } from "../sim/virtual-clock.ts";
import { PacedSender, pacedSenderDefaults, type PacedSenderOptions } from "./paced-sender.ts";

const noEvents = { handleEvent: () => {} };

function senderWith(options: Partial<PacedSenderOptions> = {}) {
  const clock = new VirtualClock(0);
  const socket = { bufferedAmount: 0, sentAtMs: [] as number[], texts: [] as string[] };
  const sender = new PacedSender(
    { ...pacedSenderDefaults, ...options },
    {
      clock,
      socket: {
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        send: (text) => {
          socket.sentAtMs.push(clock.nowMs());
          socket.texts.push(text);
        },
      },
    },
  );
  const advance = (ms: number) => clock.runUntil(clock.nowMs() + ms, noEvents);
  return { sender, socket, advance };
}

describe("paced sender", () => {
  it("sends a burst up to its rate at once and the rest at that rate, below the server's budget", () => {
    const { sender, socket, advance } = senderWith();
    const rate = pacedSenderDefaults.messagesPerSecond;
    expect(rate).toBeLessThan(agentChannelBudgetDefaults.otherPerSecondMax);
    for (let index = 0; index < 3 * rate; index += 1) expect(sender.send(`m${index}`)).toBe(true);
    expect(socket.texts).toHaveLength(rate);
    advance(1_000);
    expect(socket.texts).toHaveLength(2 * rate);
    advance(1_000);
    expect(socket.texts).toHaveLength(3 * rate);
    expect(socket.texts.at(-1)).toBe(`m${3 * rate - 1}`);
    // Within any second after the first, no more than the rate left.
    for (const startMs of [1, 250, 500, 999]) {
      const inWindow = socket.sentAtMs.filter((atMs) => atMs >= startMs && atMs < startMs + 1_000);
      expect(inWindow.length).toBeLessThanOrEqual(rate);
    }
  });

  it("holds messages while the socket has too much unsent, and goes on once it drained", () => {
    const { sender, socket, advance } = senderWith();
    socket.bufferedAmount = pacedSenderDefaults.bufferedBytesMax + 1;
    sender.send("waits");
    advance(500);
    expect(socket.texts).toEqual([]);
    socket.bufferedAmount = 0;
    advance(pacedSenderDefaults.bufferedRecheckMs);
    expect(socket.texts).toEqual(["waits"]);
  });

  it("refuses past its queue limits and reports the unsent messages on close", () => {
    const { sender, socket } = senderWith({
      messagesPerSecond: 1,
      queuedMessagesMax: 3,
      queuedCharactersMax: 100,
    });
    expect(sender.send("sent at once")).toBe(true);
    expect([sender.send("a"), sender.send("b"), sender.send("c"), sender.send("d")]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(sender.queued).toBe(3);
    expect(sender.close()).toBe(3);
    expect(sender.send("after close")).toBe(false);
    expect(socket.texts).toEqual(["sent at once"]);
    const small = senderWith({ messagesPerSecond: 1, queuedCharactersMax: 10 }).sender;
    small.send("x");
    expect(small.send("12345678901")).toBe(false);
    expect(small.send("1234567890")).toBe(true);
  });
});
