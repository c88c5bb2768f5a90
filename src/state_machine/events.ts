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

  /** @param logger where a throwing listener is reported (the engine's `logger` option). */
  constructor(private readonly logger: Logger = silentLogger) {}

  on<K extends EngineEventName>(name: K, listener: EngineListener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  emit<K extends EngineEventName>(name: K, payload: EngineEventMap[K]): void {
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
