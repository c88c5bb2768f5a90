/**
 * The `error` a workflow records when a stage's step fails: the step's error (plain data once it has
 * crossed the database), its message prefixed with the stage, so the run's error says where it failed.
 * Shared by the machines whose every stage has a path to `failed`.
 */
import type { ErrorData } from '../state_machine/errors.ts';

/** An `assign` updater for `error`: `onError: { target: 'failed', actions: assign({ error: stageFailure('testing') }) }`. */
export const stageFailure =
  (stage: string) =>
  ({ event }: { event: { error?: unknown } }): ErrorData => {
    const e = (event.error ?? {}) as Partial<ErrorData>;
    return {
      name: e.name ?? 'Error',
      message: `${stage}: ${e.message ?? 'failed'}`,
      code: e.code ?? 'STEP_FAILED',
      category: e.category ?? 'permanent',
    };
  };
