// One-shot health checks of a service instance: HTTP GET, TCP connect, or a command. Each
// answers within its timeout and never rejects; the supervisor counts consecutive failures.

import { request } from "node:http";
import { connect } from "node:net";
import type { HealthCheckDefinition } from "../../api/service-messages.ts";
import type { Clock } from "../../ports/clock.ts";
import { runCommand } from "./run-command.ts";

/** The timeout of the TCP check used for a service that defines no check. */
const defaultCheckTimeoutMs = 2_000;
/** Characters of a failing exec check's output quoted in its reason. */
const reasonOutputCharactersMax = 300;

export type HealthResult = { healthy: true } | { healthy: false; reason: string };

/** Where the instance listens, and the environment an exec check runs in. */
export interface HealthTarget {
  host: string;
  port: number;
  cwd: string;
  environment: NodeJS.ProcessEnv;
}

function withTimeout(
  clock: Clock,
  timeoutMs: number,
  attempt: (settle: (result: HealthResult) => void) => () => void,
): Promise<HealthResult> {
  return new Promise((resolve) => {
    let settled = false;
    let abort = () => {};
    const cancelTimeout = clock.schedule(timeoutMs, () =>
      settle({ healthy: false, reason: `no answer within ${timeoutMs} ms` }),
    );
    function settle(result: HealthResult): void {
      if (settled) return;
      settled = true;
      cancelTimeout();
      abort();
      resolve(result);
    }
    abort = attempt(settle);
    if (settled) abort();
  });
}

/** Healthy when something accepts a TCP connection on the port. */
export function checkTcp(
  host: string,
  port: number,
  timeoutMs: number,
  clock: Clock,
): Promise<HealthResult> {
  return withTimeout(clock, timeoutMs, (settle) => {
    const socket = connect({ host, port });
    socket.once("connect", () => settle({ healthy: true }));
    socket.once("error", (error) =>
      settle({ healthy: false, reason: `cannot connect: ${error.message}` }),
    );
    return () => socket.destroy();
  });
}

/** Healthy on an HTTP answer below 400 to a GET of `path`. */
export function checkHttp(
  host: string,
  port: number,
  path: string,
  timeoutMs: number,
  clock: Clock,
): Promise<HealthResult> {
  return withTimeout(clock, timeoutMs, (settle) => {
    const probe = request({ host, port, path, method: "GET", agent: false }, (response) => {
      response.resume();
      const statusCode = response.statusCode ?? 0;
      settle(
        statusCode >= 200 && statusCode < 400
          ? { healthy: true }
          : { healthy: false, reason: `GET ${path} answered HTTP ${statusCode}` },
      );
    });
    probe.once("error", (error) =>
      settle({ healthy: false, reason: `GET ${path} failed: ${error.message}` }),
    );
    probe.end();
    return () => probe.destroy();
  });
}

/** Healthy when the command exits 0 within the timeout. */
export async function checkExec(
  command: readonly string[],
  target: HealthTarget,
  timeoutMs: number,
  clock: Clock,
): Promise<HealthResult> {
  const outcome = await runCommand(
    { command, cwd: target.cwd, environment: target.environment, timeoutMs },
    clock,
  );
  if (outcome.ok) return { healthy: true };
  const output = outcome.output.slice(-reasonOutputCharactersMax);
  return {
    healthy: false,
    reason: `check ${outcome.reason}${output === "" ? "" : `: ${output}`}`,
  };
}

/** Runs the service's check once; a service without one is checked by a TCP connect. */
export function runHealthCheck(
  check: HealthCheckDefinition | null,
  target: HealthTarget,
  clock: Clock,
): Promise<HealthResult> {
  if (check === null) return checkTcp(target.host, target.port, defaultCheckTimeoutMs, clock);
  switch (check.type) {
    case "http":
      return checkHttp(target.host, target.port, check.path, check.timeoutMs, clock);
    case "tcp":
      return checkTcp(target.host, target.port, check.timeoutMs, clock);
    case "exec":
      return checkExec(check.command, target, check.timeoutMs, clock);
  }
}
