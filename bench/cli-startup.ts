/**
 * CLI start-up: wall time of `rmapp --version` and `rmapp workflows list` (the compiled CLI in dist/,
 * as installed) next to `node -e 0`, the floor any Node command pays. Medians of `runs` spawns each.
 * Run alone with `node --import tsx bench/cli-startup.ts`, or as the `cli` section of `npm run bench`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/rmapp.mjs', import.meta.url));

/** Median wall time in ms of `node <args>`, spawned `runs` times in an empty directory. */
function medianMs(args: string[], runs: number, cwd: string): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DATABASE_URL: '' } });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

/** The table's lines: one per command, with its ratio to `node -e 0`. */
export function cliStartup(runs = 10): string[] {
  const cwd = mkdtempSync(join(tmpdir(), 'rmapp-bench-cli-'));
  try {
    const floor = medianMs(['-e', '0'], runs, cwd);
    const rows: [string, number][] = [
      ['node -e 0', floor],
      ['rmapp --version', medianMs([BIN, '--version'], runs, cwd)],
      ['rmapp --help', medianMs([BIN, '--help'], runs, cwd)],
      ['rmapp workflows list', medianMs([BIN, 'workflows', 'list'], runs, cwd)],
    ];
    return [
      `CLI start-up, median of ${runs} runs (compiled dist/)`,
      `${'command'.padEnd(24)}${'ms'.padStart(8)}${'× node -e 0'.padStart(14)}`,
      ...rows.map(([name, ms]) => `${name.padEnd(24)}${ms.toFixed(0).padStart(8)}${(ms / floor).toFixed(2).padStart(14)}`),
    ];
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) for (const line of cliStartup()) console.log(line);
