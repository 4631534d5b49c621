// Tests only: runs s3rver (a fake S3 server from npm) in a child process on a loopback port
// chosen by the kernel. A child process, because s3rver's ListObjectsV2 continuation tokens
// use DES, which Node 20's OpenSSL 3 offers only with --openssl-legacy-provider.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

export interface S3rverProcess {
  endpoint: string;
  close(): Promise<void>;
}

const startupTimeoutMs = 30_000;

/** Starts s3rver storing under `directory` with `buckets` created; resolves once it listens. */
export async function startS3rver(
  directory: string,
  buckets: readonly string[],
): Promise<S3rverProcess> {
  const s3rverPath = createRequire(import.meta.url).resolve("s3rver");
  const script = `
    const S3rver = require(${JSON.stringify(s3rverPath)});
    const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true,
      directory: ${JSON.stringify(directory)},
      configureBuckets: ${JSON.stringify(buckets.map((name) => ({ name })))} });
    server.run().then(({ port }) => console.log(JSON.stringify({ port })));
    process.stdin.on("end", () => server.close().then(() => process.exit(0)));
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ["--openssl-legacy-provider", "-e", script], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`s3rver did not start within ${startupTimeoutMs} ms`));
    }, startupTimeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with code ${code} before listening`));
    });
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
