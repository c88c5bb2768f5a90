/** Typed progress hooks: anything in the process can follow what runs do. */

import type { ErrorData } from './errors.ts';
import type { RunStatus } from '../persistence/run-status.ts';
import { silentLogger, type Logger } from '../persistence/logger.ts';

/** Payloads by event name. */
export interface EngineEventMap {
  'run.started': { runId: string; workflow: string };
  'run.claimed': { runId: string; workflow: string; lagMs: number };
  'step.started': { runId: string; workflow: string; step: string; path: string; attempt: number; idempotencyKey: string };
  'step.succeeded': { runId: string; workflow: string; step: string; path: string; attempt: number; durationMs: number };
  'step.failed': { runId: string; workflow: string; step: string; path: string; attempt: number; durationMs: number; error: ErrorData };
  'step.retrying': {
    runId: string;
    workflow: string;
    step: string;
    path: string;
    attempt: number;
    durationMs: number;
    error: ErrorData;
    delayMs: number;
    nextAttemptAt: string;
  };
  progress: { runId: string; path: string; message: string; data?: Record<string, unknown> | undefined };
  'state.entered': { runId: string; path: string; state: unknown };
  /**
   * An event the run's root machine emitted (`emit(…)`), which plain XState gives to `actor.on`
   * listeners: here the actor lives in whichever worker executes the run. Sent as the action runs,
   * before its macrostep is durable — a macrostep repeated after a crash emits again (at least once),
   * and only the process executing the run hears it. Not stored: use a step or `ctx.progress` for a
   * record.
   */
  'run.emitted': { runId: string; workflow: string; event: { type: string; [key: string]: unknown } };
  'run.waiting': { runId: string; wakeAt: string | null };
  /**
   * This worker stopped executing a run it no longer owns: a write's fence failed (`fence`), a renewal
   * found the lease gone (`renewal`), the lease could have expired while renewals failed
   * (`self-fence`), or the worker claimed the run again after such an expiry (`reclaimed`).
   */
  'run.lost': { runId: string; workflow: string; reason: 'fence' | 'renewal' | 'self-fence' | 'reclaimed' };
  'run.finished': {
    runId: string;
    workflow: string;
    status: RunStatus;
    output?: unknown;
    error?: ErrorData | undefined;
    /** From the run's creation to its end. */
    durationMs?: number | undefined;
  };
}
export type EngineEventName = keyof EngineEventMap;
export type EngineListener<K extends EngineEventName> = (payload: EngineEventMap[K]) => void;

/** A small typed emitter; a throwing listener is reported, never allowed to break a run. */
export class EngineEvents {
  private readonly listeners = new Map<EngineEventName, Set<(payload: never) => void>>();
  /** Events of runs not inserted yet (local-start.ts `startLocalRun`), by run id, in order. */
  private readonly held = new Map<string, [EngineEventName, unknown][]>();

  /** @param logger where a throwing listener is reported (the engine's `logger` option). */
  constructor(private readonly logger: Logger = silentLogger) {}

  on<K extends EngineEventName>(name: K, listener: EngineListener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  /**
   * Holds back the events of a run that does not exist yet: a run started in this process runs its
   * first macrostep before its insert, which may still find the id taken (an idempotency key used
   * before). Nobody may hear of a run that then never was.
   */
  hold(runId: string): void {
    this.held.set(runId, []);
  }

  /** Ends {@link hold}: emits what was held (`deliver`, the run was inserted) or drops it. */
  unhold(runId: string, deliver: boolean): void {
    const queued = this.held.get(runId);
    this.held.delete(runId);
    if (deliver) for (const [name, payload] of queued ?? []) this.emit(name, payload as never);
  }

  emit<K extends EngineEventName>(name: K, payload: EngineEventMap[K]): void {
    if (this.held.size > 0) {
      const queued = this.held.get(payload.runId);
      if (queued) return void queued.push([name, payload]);
    }
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as EngineListener<K>)(payload);
      } catch (err) {
        this.logger.error({ err, event: name }, `rmapp: a "${name}" listener threw`);
      }
    }
  }
}
