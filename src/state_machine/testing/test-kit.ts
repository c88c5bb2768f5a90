/**
 * The test kit: an engine on an in-process PGlite driven by a {@link TestClock}, with crash and resume
 * at a chosen step. Exported by `rmapp/testing` (index.ts); the path kit (path-kit.ts) is built on it.
 */
import { migrate } from '../../persistence/migrate.ts';
import { openDatabase, type Database } from '../../persistence/database.ts';
import { expireLeasesOf } from '../../persistence/testing.ts';
import { createEngine, type Engine, type EngineOptions } from '../engine.ts';
import type { AnyWorkflowDefinition } from '../definition.ts';
import { TestClock } from './test-clock.ts';

/** Options of {@link createTestKit}. */
export interface TestKitOptions {
  workflows: readonly AnyWorkflowDefinition[];
  /** Engine options to override (database, clock and eviction are the kit's). */
  engine?: Omit<Partial<EngineOptions>, 'database' | 'workflows' | 'clock'>;
  /** Where the simulated time starts (epoch ms; default now). */
  startAt?: number;
}

/** Where {@link TestKit.crashAt} stops the worker. */
export interface CrashPoint {
  /** Step name (its invoke `src`). */
  step: string;
  /** Only the step at this actor path (e.g. `0.order.charging`), when several states invoke one `src`. */
  path?: string;
  /**
   * `started`: after the step's start is persisted, before its work runs. `succeeded`: after its work
   * ran (the side effect happened) but before its completion is persisted — the step runs again.
   */
  when?: 'started' | 'succeeded';
  /** Only for this run (default: the first run that reaches the step). */
  runId?: string;
  /** Which execution of the step, from 1 (default 1). */
  attempt?: number;
}

export interface TestKit {
  /** The current engine; replaced by {@link TestKit.resume} after a crash. */
  readonly engine: Engine;
  readonly clock: TestClock;
  readonly db: Database;
  /** Moves simulated time forward, letting the engine persist after each timer it fires. */
  advance(ms: number): Promise<void>;
  /** Moves simulated time to the next pending timer and fires it; false when none is pending. */
  nextTimer(): Promise<boolean>;
  /** Arms a crash: the worker stops as if killed when a run reaches the point. Resolves when it happened. */
  crashAt(point: CrashPoint): Promise<{ runId: string }>;
  /** Crashes the worker now. */
  crash(): void;
  /** After a crash: a new worker on the same database takes the crashed runs over (their leases are expired). */
  resume(): Promise<Engine>;
  /** Polls `predicate` (real time) until it holds; throws naming `what` after `timeoutMs`. */
  until(predicate: () => boolean | Promise<boolean>, what?: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates an engine on a fresh in-memory PGlite with a {@link TestClock}. Runs that wait on a timer stay
 * in memory (no eviction), so the clock drives every `after`, backoff, sleep and timeout.
 */
export async function createTestKit(options: TestKitOptions): Promise<TestKit> {
  const db = await openDatabase({ url: '', dataDir: 'memory://' });
  await migrate(db);
  const clock = new TestClock(options.startAt);
  const make = () =>
    createEngine({
      pollMs: 20,
      leaseMs: 60_000,
      ...options.engine,
      workflows: options.workflows,
      database: db,
      clock,
      // Keep runs that wait on time in memory, where the clock drives them (runs waiting only for a
      // signal are still written out and woken by it).
      evictAfterMs: Number.POSITIVE_INFINITY,
      migrate: false,
    });
  let engine = make();
  await engine.startWorker();
  let crashedOwner: string | null = null;
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      await engine.settled();
    }
  };
  const kit: TestKit = {
    get engine() {
      return engine;
    },
    clock,
    db,
    advance: (ms) => clock.advance(ms, settle),
    nextTimer: () => clock.next(settle),
    crash() {
      crashedOwner = engine.workerOwner;
      engine.simulateCrash();
    },
    crashAt(point) {
      const eventName = point.when === 'succeeded' ? 'step.succeeded' : 'step.started';
      return new Promise((resolve) => {
        const off = engine.on(eventName, (e) => {
          if (e.step !== point.step || (point.path && e.path !== point.path) || (point.runId && e.runId !== point.runId)) return;
          if (e.attempt !== (point.attempt ?? e.attempt)) return;
          off();
          kit.crash();
          resolve({ runId: e.runId });
        });
      });
    },
    async resume() {
      if (crashedOwner) {
        // What lease expiry does after leaseMs, now: the crashed worker's runs become claimable.
        await expireLeasesOf(db, crashedOwner);
        crashedOwner = null;
      }
      await engine.stop();
      engine = make();
      await engine.startWorker();
      return engine;
    },
    async until(predicate, what = 'condition', timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await predicate())) {
        if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      await engine.stop();
      await db.close();
    },
  };
  return kit;
}
