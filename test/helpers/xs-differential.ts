/**
 * Runs one machine twice — as a plain XState actor and as an rmapp workflow on an in-memory PGlite —
 * feeding both the same steps, and reads after each step what a caller can see: state value, context,
 * status, output, and the side effects the machine's actions wrote to a ledger outside the engine.
 * Both sides run on a {@link TestClock}, so delays fire at the same simulated instants.
 */
import { createActor, type AnyActor, type AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, migrate, type AnyWorkflowDefinition } from '../../src/index.ts';
import { decodeSnapshot } from '../../src/persistence/snapshot-codec.ts';
import { createTestKit } from '../../src/state_machine/testing/test-kit.ts';
import { TestClock } from '../../src/state_machine/testing/test-clock.ts';

/** One step of a script: an event to send, simulated time to move on, or (rmapp only) a crash and resume. */
export type XsStep =
  | { send: { type: string; [key: string]: unknown } }
  | { advance: number }
  | { restore: true }
  /** rmapp: the worker crashes, `down` ms pass with none, a new one restores the run; plain: `advance`. */
  | { down: number };

/** What is compared after each step. */
export interface XsReading {
  step: string;
  value: unknown;
  context: unknown;
  status: string;
  output: unknown;
  /** Side effects written to the ledger during this step. */
  effects: string[];
}

/** The ledger actions write to: `effect('entered a')` in a machine's action. */
export const xsLedger: string[] = [];
export const effect = (what: string): void => {
  xsLedger.push(what);
};

const stepName = (s: XsStep): string =>
  'send' in s ? `send ${JSON.stringify(s.send)}` : 'advance' in s ? `advance ${s.advance}` : 'down' in s ? `down ${s.down}` : 'restore';

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Plain XState: `createActor(machine, { input, clock })`; a `restore` step is a no-op here. */
export async function runPlain(machine: AnyStateMachine, input: unknown, steps: XsStep[]): Promise<XsReading[]> {
  xsLedger.length = 0;
  const clock = new TestClock(1_000_000);
  const actor: AnyActor = createActor(machine, { input, clock });
  actor.subscribe({ error: () => {} });
  actor.start();
  await clock.advance(0, turns);
  const readings: XsReading[] = [];
  let seen = 0;
  const read = (step: string) => {
    const s = actor.getSnapshot();
    readings.push({
      step,
      value: s.value,
      context: json(s.context),
      status: s.status,
      output: json(s.output),
      effects: xsLedger.slice(seen),
    });
    seen = xsLedger.length;
  };
  read('start');
  for (const s of steps) {
    if ('send' in s) actor.send(s.send);
    else if ('advance' in s) await clock.advance(s.advance, turns);
    else if ('down' in s) await clock.advance(s.down, turns);
    await clock.advance(0, turns);
    read(stepName(s));
  }
  actor.stop();
  return readings;
}

const STATUS: Record<string, string> = { succeeded: 'done', failed: 'error', running: 'active', waiting: 'active', pending: 'active' };

/** rmapp: the same machine as a workflow on the test kit; `restore` crashes the worker and starts another. */
export async function runDurable(
  machine: AnyStateMachine,
  input: unknown,
  steps: XsStep[],
  { name = 'xs.case', evict = false }: { name?: string; evict?: boolean } = {},
): Promise<XsReading[]> {
  xsLedger.length = 0;
  const def = defineWorkflow({ name, machine, input: z.any() });
  const kit = evict ? await evictingKit(def) : await createTestKit({ workflows: [def], startAt: 1_000_000 });
  const readings: XsReading[] = [];
  let seen = 0;
  try {
    const id = await kit.engine.start(name, input);
    const settle = async () => {
      await kit.advance(0);
      await turns();
      await kit.engine.settled();
    };
    const read = async (step: string) => {
      const rows = await kit.db.query<{ status: string; snapshot: unknown; output: unknown }>(
        'select status, snapshot, output from rmapp_runs where id = $1',
        [id],
      );
      const row = rows[0]!;
      const snap = decodeSnapshot(row.snapshot) as { value?: unknown; context?: unknown; status?: string; output?: unknown } | null;
      readings.push({
        step,
        value: snap?.value,
        context: json(snap?.context),
        status: STATUS[row.status] ?? row.status,
        output: json(row.status === 'succeeded' ? (row.output ?? undefined) : snap?.output),
        effects: xsLedger.slice(seen),
      });
      seen = xsLedger.length;
      if (row.status === 'failed') readings.at(-1)!.output = (await kit.engine.get(id)).error?.message;
    };
    await kit.until(async () => (await kit.engine.get(id)).status !== 'pending', 'the run to start');
    await settle();
    await read('start');
    for (const s of steps) {
      // A finished run takes no event (RunStateError), as a stopped actor ignores it.
      if ('send' in s)
        await kit.engine.send(id, s.send as never, { waitMs: 5_000 }).catch((err: Error) => {
          if (err.name !== 'RunStateError') throw err;
        });
      else if ('advance' in s) await kit.advance(s.advance);
      else if (evict && 'down' in s) await kit.advance(s.down);
      else if (evict) throw new Error('xs-differential: no restore step in the evicting mode (every wait is one)');
      else {
        await kit.engine.settled();
        kit.crash();
        // The dead worker's timers stay armed on the clock; its actor is gone (killed), as a process's would be.
        if ('down' in s) await kit.clock.advance(s.down, () => turns(1));
        await kit.resume();
        // Restored when the new worker claims it (a run that only waits for a signal: at that signal).
        await kit.until(() => kit.engine.activeRuns > 0, 'the run restored', 1_000).catch(() => {});
      }
      await settle();
      await read(stepName(s));
    }
  } finally {
    await kit.close();
  }
  return readings;
}

/**
 * The test kit's parts with eviction on: a run that waits only for a signal leaves memory after every
 * event and is restored by the next (one waiting on a timer due within 10 s stays, on the test clock).
 */
async function evictingKit(def: AnyWorkflowDefinition) {
  const db = await openDatabase({ url: '', dataDir: 'memory://' });
  await migrate(db);
  const clock = new TestClock(1_000_000);
  const engine = createEngine({ pollMs: 20, leaseMs: 60_000, workflows: [def], database: db, clock, evictAfterMs: 10_000, migrate: false });
  await engine.startWorker();
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await turns(1);
      await engine.settled();
    }
  };
  return {
    engine,
    db,
    advance: (ms: number) => clock.advance(ms, settle),
    clock,
    crash: () => {},
    resume: async () => engine,
    until: async (predicate: () => boolean | Promise<boolean>, what = 'condition', timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await predicate())) {
        if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: async () => {
      await engine.stop();
      await db.close();
    },
  };
}

function json(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** A machine from XState's own tests (each names its file), its input and the steps fed to both sides. */
export interface XsCase {
  name: string;
  machine: AnyStateMachine;
  input?: unknown;
  steps: XsStep[];
  /** Also run with eviction on: the run leaves memory after every event and is restored by the next. */
  evict?: boolean;
}

const withoutRestores = (steps: XsStep[]): XsStep[] => steps.filter((s) => !('restore' in s));
const visible = (rs: XsReading[]) => rs.filter((r) => r.step !== 'restore').map(({ effects: _effects, ...r }) => r);
const effects = (rs: XsReading[]) => rs.flatMap((r) => r.effects);

/**
 * One test per case: the plain actor's readings against the workflow's, crashed and restored where the
 * case says (and with the worker down across its `down` steps), and with eviction after every event
 * when the case asks.
 */
export function describeDifferential(title: string, cases: XsCase[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(
        c.name,
        async () => {
          const plain = await runPlain(c.machine, c.input ?? {}, withoutRestores(c.steps));
          const restored = await runDurable(c.machine, c.input ?? {}, c.steps);
          expect(visible(restored), `${c.name}: state, context, status and output after each step, restored`).toEqual(visible(plain));
          expect(effects(restored), `${c.name}: side effects in order, restored`).toEqual(effects(plain));
          if (c.evict) {
            const evicted = await runDurable(c.machine, c.input ?? {}, withoutRestores(c.steps), { evict: true });
            expect(evicted, `${c.name}: each reading with eviction after every event`).toEqual(plain);
          }
        },
        120_000,
      );
    }
  });
}
