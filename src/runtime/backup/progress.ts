// A one-line progress bar on stderr, drawn only when stderr is a terminal (never into logs or
// pipes), redrawn at most every 100 ms so drawing never costs more than the work it shows.

const redrawIntervalMs = 100;
const barWidthCharacters = 30;
const labelWidthCharacters = 40;

export interface ProgressBar {
  update(done: number, total: number | undefined, detail?: string): void;
  finish(): void;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function createProgressBar(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  formatDone: (value: number) => string = formatBytes,
): ProgressBar {
  if (!stream.isTTY) return { update: () => undefined, finish: () => undefined };
  const startMs = Date.now();
  let lastDrawMs = 0;
  let drawn = false;
  return {
    update(done, total, detail = "") {
      const nowMs = Date.now();
      if (nowMs - lastDrawMs < redrawIntervalMs) return;
      lastDrawMs = nowMs;
      drawn = true;
      const elapsedSeconds = Math.max((nowMs - startMs) / 1000, 0.001);
      const rate = `${formatDone(done / elapsedSeconds)}/s`;
      const fraction = total !== undefined && total > 0 ? Math.min(done / total, 1) : undefined;
      const filled = Math.round((fraction ?? 0) * barWidthCharacters);
      const bar =
        fraction === undefined
          ? formatDone(done)
          : `[${"#".repeat(filled)}${".".repeat(barWidthCharacters - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatDone(done)} / ${formatDone(total ?? 0)}`;
      const shortDetail =
        detail.length > labelWidthCharacters
          ? `…${detail.slice(-labelWidthCharacters + 1)}`
          : detail;
      const columns = stream.columns ?? 100;
      stream.write(`\r\x1b[K${`${label} ${bar} ${rate} ${shortDetail}`.slice(0, columns - 1)}`);
    },
    finish() {
      if (drawn) stream.write("\r\x1b[K");
    },
  };
}
