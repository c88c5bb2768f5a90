/**
 * The scripted steps of the path kit (path-kit.ts): every step of a workflow's machine, and of its
 * child machines, is replaced by one step that takes the next outcome the path has for its actor path
 * (a {@link Slot}) and holds it until the driver releases it, so parallel regions and child machines
 * follow the path's order exactly; retries fail first as the path says.
 *
 * Separate from path-kit.ts, which drives runs through the engine and checks what was persisted: this
 * module decides what each step does, and records the idempotency keys its executions were given.
 */
import type { AnyActorLogic, AnyStateMachine } from 'xstate';
import { childPath } from '../actor-paths.ts';
import type { AnyWorkflowDefinition } from '../definition.ts';
import { fromErrorData, type ErrorData } from '../errors.ts';
import { shouldRetry, type RetryPolicy } from '../retry-policy.ts';
import { step } from '../step.ts';
import type { PathEvent, WorkflowPath } from './paths.ts';

/** One execution of a step path, as the path predicts it. */
export interface Slot {
  /** The step's actor path (children's steps under their parent's). */
  key: string;
  /** Index of the path event that ends this execution. */
  turn: number;
  output?: unknown;
  error?: ErrorData | undefined;
  failFirst: ErrorData[];
  released: Promise<void>;
  release(): void;
  /** Its execution succeeded or failed for good: the step path's next execution takes the next slot. */
  finished?: boolean;
  /** Idempotency keys its attempts were given (one, unless the engine changed it between attempts). */
  keys: Set<string>;
}

interface RunScript {
  queues: Map<string, Slot[]>;
  /** The execution in progress at each step path. */
  current: Map<string, Slot>;
}

/** Path events that end a step execution: `xstate.done.actor.<id>`, `xstate.error.actor.<id>`. */
export const OUTCOME = /^xstate\.(done|error)\.actor\.(.+)$/;

const isMachine = (logic: unknown): logic is AnyStateMachine => !!logic && typeof logic === 'object' && 'getStateNodeById' in logic;

/** The step kinds of a machine and of its child machines (each gets the kit's retry policy). */
export function stepNames(machine: AnyStateMachine): string[] {
  return Object.entries((machine.implementations.actors ?? {}) as Record<string, unknown>).flatMap(([src, logic]) =>
    isMachine(logic) ? stepNames(logic) : [src],
  );
}

/**
 * The scripts of the runs a path kit drives, and the step that plays them.
 *
 * @example
 * const scripts = new StepScripts(policy);
 * const kit = await createTestKit({ workflows: [scripts.scripted(order)] });
 * const slots = scripts.script(runId, path, 0);
 * for (const slot of slots) if (slot.turn === i) slot.release(); // at event i
 * scripts.forget(runId);
 */
export class StepScripts {
  private readonly scripts = new Map<string, RunScript>();

  constructor(private readonly policy: RetryPolicy) {}

  /** The step every scripted actor runs: the run's next slot at its path, held until released. */
  private readonly step = step(async ({ runId, stepPath, idempotencyKey, attempt, signal, progress }) => {
    const script = this.scripts.get(runId);
    // One slot per execution of the step path, whatever its attempts; not per idempotency key, since
    // telling executions apart by key is what the kit checks.
    let slot = script?.current.get(stepPath);
    if (script && (!slot || slot.finished)) {
      slot = script.queues.get(stepPath)?.shift();
      if (slot) script.current.set(stepPath, slot);
    }
    // The path ends while this step runs: it stays in flight until the run is cancelled or stopped.
    const abort = new Promise<never>((_resolve, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    if (!slot) return abort;
    await Promise.race([slot.released, abort]);
    // Counted once the attempt goes ahead: an invocation its machine stopped before its turn (a signal
    // left the state) was another execution, which rightly had a key of its own.
    slot.keys.add(idempotencyKey);
    const failure = slot.failFirst[attempt - 1] ?? slot.error;
    progress(failure ? `scripted failure (${failure.category})` : 'scripted success');
    if (!failure || (failure === slot.error && !shouldRetry(this.policy, failure, attempt))) slot.finished = true;
    if (failure) throw fromErrorData(failure);
    return slot.output;
  });

  private scriptedMachine(machine: AnyStateMachine): AnyStateMachine {
    const actors: Record<string, AnyActorLogic> = {};
    for (const [src, logic] of Object.entries((machine.implementations.actors ?? {}) as Record<string, unknown>)) {
      actors[src] = isMachine(logic) ? this.scriptedMachine(logic) : (this.step as AnyActorLogic);
    }
    return machine.provide({ actors }) as AnyStateMachine;
  }

  /** `def` with every step scripted and no concurrency limit (admission is not what paths test). */
  scripted(def: AnyWorkflowDefinition): AnyWorkflowDefinition {
    return { ...def, concurrency: undefined, machine: this.scriptedMachine(def.machine) };
  }

  /** Builds the run's script from event `start` of the path: one slot per step outcome, children's steps under their actor path. */
  script(runId: string, path: WorkflowPath, start: number): Slot[] {
    const run: RunScript = { queues: new Map(), current: new Map() };
    const slots: Slot[] = [];
    const add = (e: PathEvent, prefix: string, turn: number) => {
      const m = OUTCOME.exec(e.type);
      if (!m) return;
      const key = childPath(prefix, m[2] as string);
      if (e.child) {
        for (const c of e.child.events) add(c, key, turn);
        return;
      }
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      const slot: Slot = {
        key,
        turn,
        output: e.output,
        error: m[1] === 'error' ? e.error : undefined,
        failFirst: e.failFirst ?? [],
        released,
        release,
        keys: new Set(),
      };
      if (!run.queues.has(key)) run.queues.set(key, []);
      run.queues.get(key)?.push(slot);
      slots.push(slot);
    };
    path.events.forEach((e, i) => i >= start && add(e, '', i));
    this.scripts.set(runId, run);
    return slots;
  }

  /** Drops the run's script: its steps no longer take slots. */
  forget(runId: string): void {
    this.scripts.delete(runId);
  }
}
