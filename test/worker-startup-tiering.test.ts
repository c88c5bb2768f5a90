/**
 * `rmapp worker` raises V8's interrupt budget for its first seconds of CPU and then restores the default
 * (src/rmapp/cli/startup-tiering.ts); what it saves a recovering worker is a benchmark figure
 * (bench/README.md), not asserted here. These tests drive it with a fake process: the flag is
 * process-wide, and the test runner's own must not change.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import {
  DEFAULT_INTERRUPT_BUDGET,
  delayTierUpDuringStartup,
  STARTUP_CPU_MS,
  STARTUP_INTERRUPT_BUDGET,
  startupTieringSkipped,
  type TieringProcess,
} from '../src/rmapp/cli/startup-tiering.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function fakeProcess(execArgv: string[] = [], v8Version = '11.3.244.8-node.33') {
  const flags: string[] = [];
  let cpu = 120;
  let check: (() => void) | null = null;
  const proc: TieringProcess = {
    execArgv,
    v8Version,
    cpuMs: () => cpu,
    setFlags: (f) => flags.push(f),
    every: (_ms, c) => {
      check = c;
      return () => (check = null);
    },
  };
  return {
    proc,
    flags,
    spend: (ms: number) => {
      cpu += ms;
      check?.();
    },
    checking: () => check !== null,
  };
}

it('raises the budget at once and restores the default only after the start-up CPU is spent', () => {
  const p = fakeProcess();
  expect(delayTierUpDuringStartup(p.proc)).toBe(true);
  expect(p.flags).toEqual([`--interrupt-budget=${STARTUP_INTERRUPT_BUDGET}`]);
  p.spend(STARTUP_CPU_MS - 1);
  expect(p.flags, 'restored before the window was spent').toHaveLength(1);
  p.spend(1);
  expect(p.flags).toEqual([`--interrupt-budget=${STARTUP_INTERRUPT_BUDGET}`, `--interrupt-budget=${DEFAULT_INTERRUPT_BUDGET}`]);
  expect(p.checking(), 'still polling after the default was restored').toBe(false);
});

it("leaves an operator's own budget alone, in either spelling", () => {
  for (const argv of [['--interrupt-budget=1000'], ['--enable-source-maps', '--interrupt_budget=500']]) {
    const p = fakeProcess(argv);
    expect(delayTierUpDuringStartup(p.proc), argv.join(' ')).toBe(false);
    expect(p.flags).toEqual([]);
  }
  expect(startupTieringSkipped(['--interrupt-budget-for-feedback-allocation=10'], '11.3.244.8')).toBeNull();
});

it('changes nothing on a V8 whose default budget it does not know', () => {
  const p = fakeProcess([], '12.4.254.21-node.33');
  expect(delayTierUpDuringStartup(p.proc)).toBe(false);
  expect(p.flags).toEqual([]);
  expect(startupTieringSkipped([], '12.4.254.21')).toContain('12.4.254.21');
});

it("knows this Node's default budget, and a real process takes the flag and keeps running", () => {
  // The default restored must be V8's own: read it from the V8 this suite runs on.
  const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
  const v8Default = /--interrupt-budget \(.*\)\n\s+type: int\s+default: --interrupt-budget=(\d+)/.exec(options)?.[1];
  if (startupTieringSkipped([], process.versions.v8) === null) expect(Number(v8Default)).toBe(DEFAULT_INTERRUPT_BUDGET);
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import('./dist/rmapp/cli/startup-tiering.js'); console.log(String(m.delayTierUpDuringStartup()));`,
    ],
    { cwd: ROOT, encoding: 'utf8' },
  ).trim();
  expect(out).toBe(String(startupTieringSkipped([], process.versions.v8) === null));
});
