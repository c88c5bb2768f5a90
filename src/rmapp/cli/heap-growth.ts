/**
 * The heap growth `rmapp worker` sets for its own process. A worker's heap is a small live set (the
 * sessions in memory, ~15–25 MB) plus the garbage of claiming, restoring, committing and evicting runs
 * in bursts; V8's default lets the old generation grow to ~4× the live set before the next full GC, so
 * a burst of 500 runs took the heap to 100–130 MB and the process kept those pages. Capping growth at
 * 2× between full GCs (`--heap-growing-percent=100`): a worker with 10,000 waiting runs 145/182 →
 * 120/132 MB (RSS/peak), with 100,000 163/187 → 121/135 MB; at concurrency 50, 10–14 full GCs
 * instead of 4–7 per 3,050 workflows, ~35 ms more of full-GC time in all (0.01 ms per workflow), CPU
 * per workflow unchanged within this machine's noise; a worker restoring 1,000 runs at once (a live
 * set several times larger) pays ~5 % more CPU in GC (bench/README.md, "Worker heap growth"). The
 * flag is read at each full GC, so setting it at run time works. A growth the operator passed
 * (`node --heap-growing-percent=… bin/rmapp.mjs worker`; Node refuses it in NODE_OPTIONS) is left as
 * it is. Only the worker command sets it: an application embedding the engine keeps its own
 * process's settings.
 */
import { setFlagsFromString } from 'node:v8';

/** Heap growth between full GCs a worker sets for itself: factor 1 + percent / 100. */
export const WORKER_HEAP_GROWING_PERCENT = 100;

/** The V8 flag to set, or null when the operator chose a growth in Node's arguments. */
export function heapGrowthFlag(execArgv: readonly string[]): string | null {
  const chosen = execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a));
  return chosen ? null : `--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`;
}

/** Sets the worker's heap growth for this process unless the operator chose one; returns the flag set. */
export function limitWorkerHeapGrowth(): string | null {
  const flag = heapGrowthFlag(process.execArgv);
  if (flag) setFlagsFromString(flag);
  return flag;
}
