// Finds the program a service or hook names, the way the spawn will: a name with a slash
// relative to the agent's cwd, a bare name on PATH. prepare uses it to fail before a failover
// commits to this node; start and hooks spawn the resolved path so both always agree.

import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `program`, or undefined when there is no executable file of that name. */
export async function resolveProgram(
  program: string,
  cwd: string,
  pathVariable: string | undefined,
): Promise<string | undefined> {
  if (program === "") return undefined;
  if (isAbsolute(program) || program.includes("/")) {
    const path = resolve(cwd, program);
    return (await isExecutable(path)) ? path : undefined;
  }
  for (const directory of (pathVariable ?? "").split(delimiter)) {
    if (directory === "") continue;
    const path = resolve(cwd, join(directory, program));
    if (await isExecutable(path)) return path;
  }
  return undefined;
}
