/**
 * `rmapp worker` caps V8's heap growth between full GCs for its own process (src/rmapp/cli/heap-growth.ts:
 * the garbage of claim bursts otherwise grew the heap to ~4× its live set and the process kept the pages),
 * unless the operator chose a growth in Node's arguments (Node refuses the flag in NODE_OPTIONS). The memory it saves is a
 * benchmark figure (bench/README.md), not asserted here.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { heapGrowthFlag, WORKER_HEAP_GROWING_PERCENT } from '../src/rmapp/cli/heap-growth.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

it('sets the worker heap growth when the operator gave none', () => {
  expect(heapGrowthFlag([])).toBe(`--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  expect(heapGrowthFlag(['--enable-source-maps', '--max-old-space-size=512'])).toBe(
    `--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`,
  );
});

it("leaves the operator's own heap growth alone, in either spelling", () => {
  expect(heapGrowthFlag(['--heap-growing-percent=300'])).toBeNull();
  expect(heapGrowthFlag(['--enable-source-maps', '--heap_growing_percent=50'])).toBeNull();
});

it('is applied in a process of its own: the compiled CLI module sets it and the process keeps working', () => {
  // A child process: the flag is process-wide, and the test runner's own heap must not change under it.
  const run = (nodeFlags: string[]) =>
    execFileSync(
      process.execPath,
      [
        ...nodeFlags,
        '--input-type=module',
        '-e',
        `const m = await import('./dist/rmapp/cli/heap-growth.js'); console.log(String(m.limitWorkerHeapGrowth()));`,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    ).trim();
  expect(run([])).toBe(`--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  expect(run(['--heap-growing-percent=300'])).toBe('null');
});
