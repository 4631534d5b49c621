// Where a worker thread's code is: beside this module when running from source (loaded
// through tsx, since a worker does not inherit the parent's module hooks), or `<name>.mjs`
// beside the bundle. Undefined when neither exists; callers then work on their own thread.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

export interface WorkerScript<Data> {
  start(data: Data): Worker;
}

export function workerScript<Data>(
  name: "chunk-worker" | "restore-worker",
): WorkerScript<Data> | undefined {
  if (import.meta.url.endsWith(".ts")) {
    const source = new URL(`./${name}.ts`, import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => tsx.tsImport(${JSON.stringify(source)}, ${JSON.stringify(source)}))`;
    return { start: (data) => new Worker(bootstrap, { eval: true, workerData: data }) };
  }
  const bundled = new URL(`./${name}.mjs`, import.meta.url);
  return existsSync(fileURLToPath(bundled))
    ? { start: (data) => new Worker(bundled, { workerData: data }) }
    : undefined;
}
