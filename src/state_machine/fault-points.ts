/**
 * Named fault points: places in the engine where a test can make a worker process die with SIGKILL,
 * to prove that a run survives a crash at exactly that place (the crash matrix,
 * test/helpers/crash-matrix.ts). Armed through the environment, read once when this module loads:
 *
 * ```
 * RMAPP_FAULT=<point>:<target>[:<nth>][,<point>:<target>[:<nth>]…]
 * ```
 *
 * | point | reached | target |
 * |---|---|---|
 * | `before-persist` | a run's write (snapshot + history of a macrostep) is about to be committed | a state of the write (`creatingPR`, `parent.child`) |
 * | `after-persist` | that write is committed, before the worker acts on it (a step's work waits on it) | as above |
 * | `before-side-effect` | a step's start is durable, its function is about to run | the step (its invoke `src`, e.g. `createPR`) or its actor path |
 * | `after-side-effect` | a step's function returned; its result is not yet recorded | as above |
 *
 * `target` `*` matches every state or step. `nth` (default 1) picks the nth time this process reaches
 * the point for that target. When it is reached, the process writes one line to stderr
 * (`rmapp: fault point …`) and sends itself SIGKILL: no `finally`, no exit handler, no flush runs,
 * as when the machine loses power. A fresh worker then resumes the run.
 *
 * Zero cost when unset: call sites test {@link faultsArmed} (a constant) before anything else.
 *
 * @example
 * // Die after createPR opened the pull request, before the step's result is recorded:
 * //   RMAPP_FAULT=after-side-effect:createPR rmapp worker
 * if (faultsArmed) reachFaultPoint('after-side-effect', [step, path]);
 */
import { writeSync } from 'node:fs';

/** The fault points, in the order a step meets them. */
export const FAULT_POINTS = ['before-persist', 'after-persist', 'before-side-effect', 'after-side-effect'] as const;
export type FaultPointName = (typeof FAULT_POINTS)[number];

/** One armed fault: die the `nth` time `point` is reached for `target`. */
export interface ArmedFault {
  point: FaultPointName;
  target: string;
  nth: number;
}

/**
 * Parses `RMAPP_FAULT`. A malformed value throws at start-up, naming the fix: a crash test whose
 * fault silently never fires would pass for the wrong reason.
 */
export function parseFaultSpec(text: string | undefined): ArmedFault[] {
  if (!text?.trim()) return [];
  return text.split(',').map((part) => {
    const [point, target, nth, ...rest] = part.trim().split(':');
    const n = nth === undefined ? 1 : Number(nth);
    if (!FAULT_POINTS.includes(point as FaultPointName) || !target || rest.length > 0 || !Number.isInteger(n) || n < 1) {
      throw new Error(
        `RMAPP_FAULT: "${part.trim()}" is not <point>:<target>[:<nth>] with point one of ${FAULT_POINTS.join(', ')} ` +
          '(e.g. RMAPP_FAULT=after-side-effect:createPR or RMAPP_FAULT=before-persist:testing:2).',
      );
    }
    return { point: point as FaultPointName, target, nth: n };
  });
}

/** The names a state value matches as a target: `a` and `a.b` for `{ a: 'b' }`. */
export function stateTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!value || typeof value !== 'object') return [];
  const names: string[] = [];
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    names.push(key);
    for (const sub of stateTargets(child)) names.push(`${key}.${sub}`);
  }
  return names;
}

/** Counts arrivals at armed points and fires `onFault` on the nth matching one. */
export class FaultPoints {
  private readonly hits: number[];

  constructor(
    readonly armed: readonly ArmedFault[],
    private readonly onFault: (fault: ArmedFault, matched: string) => void,
  ) {
    this.hits = armed.map(() => 0);
  }

  /** The engine reached `point` for `targets` (state names, or a step name and path). */
  reach(point: FaultPointName, targets: readonly string[]): void {
    this.armed.forEach((fault, i) => {
      if (fault.point !== point) return;
      const matched = fault.target === '*' ? (targets[0] ?? '*') : targets.find((t) => t === fault.target);
      if (matched === undefined) return;
      this.hits[i] = (this.hits[i] ?? 0) + 1;
      if (this.hits[i] === fault.nth) this.onFault(fault, matched);
    });
  }
}

/** What an armed fault does in a real process: one line on stderr (written synchronously), then SIGKILL. */
function killThisProcess(fault: ArmedFault, matched: string): void {
  writeSync(2, `rmapp: fault point ${fault.point}:${fault.target}${fault.nth > 1 ? `:${fault.nth}` : ''} reached at ${matched}; SIGKILL\n`);
  // Linux delivers a signal a process sends itself before kill() returns: nothing after this runs.
  process.kill(process.pid, 'SIGKILL');
}

const processFaults = new FaultPoints(parseFaultSpec(process.env.RMAPP_FAULT), killThisProcess);

/** True when `RMAPP_FAULT` armed a fault point in this process (read once, at start-up). */
export const faultsArmed: boolean = processFaults.armed.length > 0;

/** Marks that the engine reached `point` for `targets`; kills the process if a fault is armed there. */
export function reachFaultPoint(point: FaultPointName, targets: readonly string[]): void {
  processFaults.reach(point, targets);
}
