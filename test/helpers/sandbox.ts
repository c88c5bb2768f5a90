/**
 * The sandbox the GitHub tests run the scripted agent and the test command in: the real bubblewrap
 * driver (CI installs `bubblewrap`), so every workflow test also runs through the isolation.
 */
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox } from '../../src/rmapp/sandbox/index.ts';

export const testSandbox = createSandbox({ driver: 'bubblewrap' });

/**
 * A file named `name` that a sandboxed command left in a folder of the service under tmpdir: in a
 * folder whose name starts with `prefix` (`rmapp-net-`, `rmapp-plan-`), or one level inside it. Null
 * when there is none (folders gone meanwhile are skipped).
 */
export function plantedUnderTmp(prefix: string, name: string): string | null {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(prefix)) continue;
    const top = join(tmpdir(), entry);
    for (const candidate of [join(top, name), ...listOrNone(top).map((sub) => join(top, sub, name))])
      if (existsSync(candidate)) return candidate;
  }
  return null;
}

function listOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
