/**
 * A workflow definition: name + version + XState machine + zod input schema. The version is what a
 * run is pinned to for its whole life; by default it is a hash of the machine's structure, so any
 * change to states, transitions, invoked `src` names or a child machine's structure yields a new version.
 */
import { createHash } from 'node:crypto';
import type { AnyStateMachine } from 'xstate';
import type { z } from 'zod';
import { ValidationError } from './errors.ts';
import { findUnstorableText } from './durable-check.ts';

/** Passed to a definition's `cleanup` when a run is cancelled. */
export interface CleanupContext {
  runId: string;
  reason: string;
  /** The run's context at the moment it was cancelled. */
  context: unknown;
  /**
   * Aborted when this process can no longer count on being the only one running this cleanup: the
   * lease it runs under was lost (a renewal found another holder, or none succeeded for most of a
   * lease: another worker may run the cleanup again then). A cleanup runs at least once (README,
   * "What is guaranteed", Cancellation), so stop when it aborts and leave the rest to the next run of it.
   * The engine always gives it; optional in the type so that a cleanup of a definition made by this
   * version stays assignable where an earlier copy of the package (which gave none) is expected.
   */
  signal?: AbortSignal;
}

/**
 * Any definition, whatever its input, machine and output: what a list of workflows holds. `any`, not
 * `unknown`: a definition's input appears in parameter positions (its schema, its machine's input),
 * where a definition of a narrower input is not assignable to one of `unknown`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyWorkflowDefinition = WorkflowDefinition<any, any, any>;

/**
 * A registered workflow. Build it with {@link defineWorkflow}. The type parameters are inferred there and
 * carry into `engine.start(definition, input)` (the schema's input type), `send` (the machine's events)
 * and `waitFor` (its output): `TInput` is what the schema produces, `TStartInput` what it accepts
 * (fields with a default may be left out).
 */
export interface WorkflowDefinition<TInput = unknown, TMachine extends AnyStateMachine = AnyStateMachine, TStartInput = TInput> {
  readonly name: string;
  readonly version: string;
  readonly machine: TMachine;
  readonly input: z.ZodType<TInput, TStartInput>;
  /** Runs once when a run is cancelled or times out, after its actors stopped (release resources, post a note). */
  readonly cleanup?: ((ctx: CleanupContext) => Promise<void> | void) | undefined;
  /** Default per-run timeout: a run still going after this long fails with category `timeout`. */
  readonly timeoutMs?: number | undefined;
  /** Concurrency limit across all workers; see {@link ConcurrencyOptions}. */
  readonly concurrency?: ConcurrencyOptions<TInput> | undefined;
  /**
   * Top-level final states that mean the workflow failed (e.g. `['failed']`): a run ending there gets
   * status `failed`, with the error taken from the machine's output `error` (plain {@link ErrorData}).
   */
  readonly failureStates?: readonly string[] | undefined;
  /** Defaults for events sent to this workflow's runs; see {@link SignalDefaults}. */
  readonly signals?: SignalDefaults | undefined;
}

/**
 * Defaults for `engine.send` to a workflow's runs. `buffer: true` (24 h) or `{ forMs }` keeps an event
 * that no state accepts yet in the run's inbox until a state takes it or it expires, for every send
 * that does not say otherwise: for a workflow whose events come from outside (webhooks, people) and
 * may well arrive a step early. A call's own `buffer` (`false` included) wins.
 */
export interface SignalDefaults {
  buffer?: boolean | { forMs: number } | undefined;
}

/**
 * At most `limit` runs of this workflow that share a key run at once, across all workers; the others
 * wait in order, visible with their queue position. Without `key`, the limit is per workflow.
 *
 * @example
 * concurrency: { key: (input) => `${input.repo}#${input.branch}`, limit: 1 } // one run per branch
 */
export interface ConcurrencyOptions<TInput> {
  limit: number;
  key?: ((input: TInput) => string | null | undefined) | undefined;
  /**
   * `workflow` (default): keys are per workflow name. `global`: the key is shared with every workflow
   * that uses the same key with `scope: 'global'`, e.g. one run per GitHub issue whichever template it
   * runs. The scopes never share a limit: a global key `Deploy:prod` is not workflow `Deploy`'s key
   * `prod` (concurrency-key.ts).
   */
  scope?: 'workflow' | 'global' | undefined;
}

/** Options of {@link defineWorkflow}. */
export interface DefineWorkflowOptions<TInput, TMachine extends AnyStateMachine = AnyStateMachine, TStartInput = TInput> {
  name: string;
  /** Pin a version by hand; default: a hash of the machine's structure. */
  version?: string | undefined;
  machine: TMachine;
  input: z.ZodType<TInput, TStartInput>;
  cleanup?: ((ctx: CleanupContext) => Promise<void> | void) | undefined;
  timeoutMs?: number | undefined;
  concurrency?: ConcurrencyOptions<TInput> | undefined;
  failureStates?: readonly string[] | undefined;
  /** Defaults for events sent to its runs, e.g. `{ buffer: true }`; see {@link SignalDefaults}. */
  signals?: SignalDefaults | undefined;
}

const NAME_PATTERN = /^[A-Za-z][\w.-]{0,99}$/;

/**
 * What is wrong with a definition's `concurrency`, or null: a limit that is a positive integer, a key
 * that is a function, a scope that is `workflow` or `global`. A definition spread with its own
 * `concurrency` (`{ ...def, concurrency }`, as the GitHub workflows are registered) is never seen by
 * {@link defineWorkflow}: a scope `'Global'` was taken for `workflow` (the runs of two workflows meant to
 * share a key each ran under their own), a limit of 0 queued every run for ever, one of 1.5 failed each
 * start with a raw database error, and a key that was no function failed each start.
 */
function concurrencyProblem(concurrency: unknown): string | null {
  if (concurrency === undefined || concurrency === null) return null;
  const c = concurrency as { limit?: unknown; key?: unknown; scope?: unknown } | null;
  if (!c || typeof c !== 'object') return 'concurrency must be an object, e.g. { limit: 1 }';
  if (!(Number.isInteger(c.limit) && (c.limit as number) > 0)) return 'concurrency.limit must be a positive integer';
  if (c.key != null && typeof c.key !== 'function') return 'concurrency.key must be a function of the input';
  if (c.scope !== undefined && c.scope !== 'workflow' && c.scope !== 'global')
    return `concurrency.scope must be "workflow" or "global" (got ${typeof c.scope === 'string' ? JSON.stringify(c.scope.slice(0, 40)) : typeof c.scope})`;
  return null;
}

/**
 * What is wrong with `value` as a `defineWorkflow(...)` result, or null: a name and version, an XState
 * machine (its `root` and `transition`), an input schema that parses and a valid `concurrency`. An object that only has such
 * fields (`{ machine: {}, input: {} }`) failed later inside the engine — registered among the previous
 * versions, its runs failed to start after every lease, taken back by the same worker for ever. A getter
 * that throws is a problem too, not an exception out of the check.
 */
export function definitionProblem(value: unknown): string | null {
  try {
    const v = value as {
      name?: unknown;
      version?: unknown;
      machine?: { root?: unknown; transition?: unknown };
      input?: { safeParse?: unknown };
    };
    if (!v || typeof v !== 'object') return 'not an object';
    if (typeof v.name !== 'string' || typeof v.version !== 'string') return 'no name and version';
    // Stored in every run's row and its concurrency key: a NUL failed each start with a database error,
    // and two names with different lone surrogates were stored as one (U+FFFD), sharing one limit.
    if (v.name === '') return 'its name is empty';
    const unstorable = findUnstorableText(v.name, 'its name') ?? findUnstorableText(v.version, 'its version');
    if (unstorable) return `${unstorable.path} ${unstorable.problem}`;
    if (typeof v.machine?.transition !== 'function' || typeof v.machine.root !== 'object') return 'its machine is not an XState machine';
    if (typeof v.input?.safeParse !== 'function') return 'its input is not a zod schema';
    return concurrencyProblem((v as { concurrency?: unknown }).concurrency);
  } catch (err) {
    return `reading it threw (${err instanceof Error ? err.message : String(err)})`;
  }
}

/**
 * Declares a workflow.
 *
 * @example
 * const order = defineWorkflow({ name: 'order', machine: orderMachine, input: z.object({ id: z.string() }) });
 */
export function defineWorkflow<TInput, TMachine extends AnyStateMachine = AnyStateMachine, TStartInput = TInput>(
  options: DefineWorkflowOptions<TInput, TMachine, TStartInput>,
): WorkflowDefinition<TInput, TMachine, TStartInput> {
  if (!NAME_PATTERN.test(options.name)) {
    throw new ValidationError(`Workflow name "${options.name}" is invalid: use letters, digits, ".", "_" or "-", starting with a letter.`);
  }
  if (!options.machine || typeof options.machine.getInitialSnapshot !== 'function') {
    throw new ValidationError(`Workflow "${options.name}": machine must be an XState machine (setup(...).createMachine(...)).`);
  }
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new ValidationError(`Workflow "${options.name}": timeoutMs must be a positive number of milliseconds.`);
  }
  const concurrency = concurrencyProblem(options.concurrency);
  if (concurrency) throw new ValidationError(`Workflow "${options.name}": ${concurrency}.`);
  const buffer = options.signals?.buffer;
  if (
    buffer !== undefined &&
    typeof buffer !== 'boolean' &&
    !(buffer && typeof buffer === 'object' && Number.isFinite(buffer.forMs) && buffer.forMs > 0)
  ) {
    throw new ValidationError(
      `Workflow "${options.name}": signals.buffer must be true, false or { forMs: <positive milliseconds> } (got ${JSON.stringify(buffer)}).`,
    );
  }
  return {
    name: options.name,
    version: options.version ?? machineVersion(options.machine),
    machine: options.machine,
    input: options.input,
    cleanup: options.cleanup,
    timeoutMs: options.timeoutMs,
    concurrency: options.concurrency,
    failureStates: options.failureStates,
    signals: options.signals,
  };
}

/**
 * A short hash of the machine's structure: state ids, transitions, invoke `src` names, delays, and the
 * structure of every child machine it can invoke or spawn by name (its `setup({ actors })`) or invoke
 * inline, recursively — a child changed alone also yields a new version: its snapshot lives inside the
 * parent's, and a run in flight must not take a child whose states it does not know. (Logic spawned
 * inline cannot be persisted; durable-check.ts refuses it.) Functions (actions, guards given inline)
 * contribute only their names, so reformatting code does not change it. A machine without child
 * machines hashes exactly as before children were covered.
 */
export function machineVersion(machine: AnyStateMachine): string {
  return structureHash(machine, new Map(), new Set());
}

/**
 * The hash of `machine`'s definition and of its children's hashes, each machine hashed once per walk
 * however often it is named (a text that held each child's text whole doubled in size at every level
 * of nesting: 11 s at 20 levels). A child that is being hashed already — a machine that can start
 * itself, directly or through another — is named as a cycle.
 */
function structureHash(machine: AnyStateMachine, done: Map<AnyStateMachine, string>, visiting: Set<AnyStateMachine>): string {
  const known = done.get(machine);
  if (known !== undefined) return known;
  let text = JSON.stringify(machine.root.definition, (_key, value: unknown) =>
    typeof value === 'function' ? `fn:${(value as { name?: string }).name ?? ''}` : value,
  );
  const children = childMachines(machine);
  if (children.length > 0) {
    visiting.add(machine);
    const parts = children.map(([src, child]) => [src, visiting.has(child) ? 'cycle' : structureHash(child, done, visiting)]);
    visiting.delete(machine);
    text += `\n${JSON.stringify(parts)}`;
  }
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
  // Within a cycle a hash depends on where the walk entered it; the walk's order is fixed (children
  // sorted by name), so the version is the same every time, and every machine's definition is in it.
  done.set(machine, hash);
  return hash;
}

/** The child machines a machine can start, by `src` name, in a stable order. */
function childMachines(machine: AnyStateMachine): [string, AnyStateMachine][] {
  const found = new Map<string, AnyStateMachine>();
  for (const [src, logic] of Object.entries(machine.implementations.actors ?? {})) if (isMachine(logic)) found.set(src, logic);
  const walk = (node: AnyStateMachine['root']) => {
    node.invoke.forEach((invoke, i) => {
      const src = invoke.src; // always a name here: XState names inline sources
      if (typeof src !== 'string' || found.has(src)) return;
      // An inline source: XState names it `xstate.invoke.<i>.<node id>` and keeps the logic in the config.
      const config = node.config.invoke;
      const logic: unknown = (Array.isArray(config) ? config[i] : config)?.src;
      if (isMachine(logic)) found.set(src, logic);
    });
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(machine.root);
  return [...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function isMachine(logic: unknown): logic is AnyStateMachine {
  return (
    typeof logic === 'object' &&
    logic !== null &&
    'root' in logic &&
    'implementations' in logic &&
    typeof (logic as { getInitialSnapshot?: unknown }).getInitialSnapshot === 'function'
  );
}
