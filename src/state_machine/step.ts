/**
 * Steps are invoked promise actors. `step()` wraps the work so that the engine can checkpoint it:
 * the work starts only once the snapshot that entered the step is durable; it gets a stable
 * idempotency key, an `AbortSignal`, its attempt number, durable retries, timeouts and a durable
 * `sleep`. Outside an engine (a plain `createActor` in a unit test) it runs the work directly.
 */
import { fromPromise, type AnyActorRef, type PromiseActorLogic } from 'xstate';
import { resolveRetryPolicy, type RetryPolicy } from './retry-policy.ts';
import { systemClock } from './clock.ts';

/** What a step's work receives. */
export interface StepContext<TInput> {
  input: TInput;
  /** Aborted on cancellation, on an attempt timeout and when the worker gives the run up. */
  signal: AbortSignal;
  runId: string;
  /** Actor path of the step inside the run (e.g. `0.order.charging`). */
  stepPath: string;
  /**
   * Stable across retries and resumes of this execution of the step; a later execution of the same
   * step (a loop) gets a new one. Use it for every side effect outside the database.
   */
  idempotencyKey: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Records a progress message in the run's history and emits a `progress` event. */
  progress(message: string, data?: Record<string, unknown>): void;
  /**
   * Sleeps durably: if the process dies, the re-executed step sleeps only what remains of this sleep.
   * Long sleeps evict the run from memory.
   */
  sleep(ms: number): Promise<void>;
  /**
   * Stores a value (any JSON; text as a string) under `name` for this run, outside the snapshot:
   * plans, test output, anything large. Overwrites on a retry. Fails over `limits.artifactBytes`.
   * With `{ fenced: true }`, see {@link SaveArtifactOptions.fenced}.
   */
  saveArtifact(name: string, value: unknown, options?: SaveArtifactOptions): Promise<void>;
  /** Reads an artifact of this run (also an offloaded step output: pass the ref's `$artifact`). */
  getArtifact<T = unknown>(name: string): Promise<T | undefined>;
}

/** Options of {@link StepContext.saveArtifact}. */
export interface SaveArtifactOptions {
  /**
   * Save only while this step's worker still holds the run (the session's lease owner and epoch,
   * matched in SQL as the engine's commits are, and a lease not yet expired); otherwise nothing is
   * saved, the run is stopped on this worker and the call rejects (`RUN_LEFT`). For the record that
   * guards an effect outside the database, made just after it: a worker paused past its lease while
   * another took the run over is refused the record and must not make the effect (DESIGN.md,
   * "Ownership"). Refused as well (`RUN_LEFT`, the run going on) to an attempt that is over on this
   * worker: timed out, aborted (a cancellation), or left by its machine. A step that goes on after its
   * own abort (an agent's last transcript) saves unfenced.
   */
  fenced?: boolean | undefined;
}

/** Per-step options. */
export interface StepOptions {
  /** Retry-policy key (engine option `retryPolicies`); defaults to the invoke's `src` name. */
  kind?: string | undefined;
  /** Overrides of the retry policy for this step. */
  retry?: Partial<RetryPolicy> | undefined;
  /**
   * Per-attempt timeout: aborts the attempt's signal and fails it with category `timeout`. It bounds the
   * work: a durable `ctx.sleep` stops it, and the wake starts it again in full (a run that leaves memory
   * in the sleep resumes the attempt with a new one).
   */
  timeoutMs?: number | undefined;
}

/** The work of a step. */
export type StepFunction<TOutput, TInput> = (ctx: StepContext<TInput>) => Promise<TOutput> | TOutput;

/** Implemented by the engine's run session; looked up through the actor system. */
export interface StepHost {
  runStep<TOutput, TInput>(
    self: AnyActorRef,
    fn: StepFunction<TOutput, TInput>,
    options: StepOptions,
    input: TInput,
    signal: AbortSignal,
  ): Promise<TOutput>;
}

/**
 * Shared by every copy of this module in the process (through a registered symbol on `globalThis`): a
 * workflows module that the CLI loads may import rmapp from another path than the engine running it
 * (its TypeScript sources, another install), and its steps must still find that engine's host. With a
 * map per copy such a step would run as a plain promise, without checkpoints or retries.
 */
const hosts: WeakMap<object, StepHost> = ((globalThis as Record<symbol, unknown>)[Symbol.for('rmapp.stepHosts')] ??= new WeakMap<
  object,
  StepHost
>()) as WeakMap<object, StepHost>;
/** Artifacts of steps run outside an engine (plain `createActor` in unit tests): in memory. */
const localArtifacts = new Map<string, unknown>();

/** Called by the engine before starting a run's actor. */
export function attachStepHost(system: object, host: StepHost): void {
  hosts.set(system, host);
}

/**
 * Declares a step.
 *
 * @example
 * const charge = step(async ({ input, idempotencyKey }) => payments.charge(input.amount, { idempotencyKey }),
 *   { retry: { maxAttempts: 3 }, timeoutMs: 30_000 });
 * setup({ actors: { charge } }).createMachine({ ... invoke: { src: 'charge', ... } ... });
 */
export function step<TOutput, TInput = unknown>(
  fn: StepFunction<TOutput, TInput>,
  options: StepOptions = {},
): PromiseActorLogic<TOutput, TInput> {
  // Fail where the step is declared, not when a run first reaches it.
  if (options.retry) resolveRetryPolicy(options.retry);
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new RangeError(`step: timeoutMs must be a positive number of milliseconds (got ${String(options.timeoutMs)}).`);
  }
  return fromPromise<TOutput, TInput>(async ({ input, self, signal, system }) => {
    const host = hosts.get(system);
    if (host) return host.runStep(self, fn, options, input, signal);
    // Not in an engine: run once, as a plain promise actor would.
    return fn({
      input,
      signal,
      runId: 'local',
      stepPath: self.id,
      idempotencyKey: `local/${self.id}`,
      attempt: 1,
      progress: () => {},
      // The wall clock: a month-long sleep must not end after 1 ms (a Node timer holds ~24.8 days).
      sleep: (ms) => systemClock.sleep(ms, signal),
      saveArtifact: async (name, value) => {
        localArtifacts.set(name, value);
      },
      getArtifact: async <T>(name: string) => localArtifacts.get(name) as T | undefined,
    });
  });
}
