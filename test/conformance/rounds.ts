/**
 * Drives conformance cases under rmapp in rounds: round 0 starts every case's run, round r applies
 * every case's step r (an event, or a wait) at once; each case settles on its own and its view is
 * read after each of its steps. Between rounds the mode may replace the worker (stop it, or SIGKILL
 * its process) — a barrier, so no step is applied while the worker is being replaced.
 */
import type { Database, Engine } from '../../src/index.ts';
import { eventsIn, readRow, settle, sleep, view, type Case, type View } from './case.ts';

export interface RoundsDriver {
  db: Database;
  /** Starts runs and sends events. */
  client: () => Engine;
  /** Before round r (0: before the runs start): start or replace the worker; true when it was replaced. */
  beforeRound(round: number, runs: ReadonlyMap<string, CaseRun>): Promise<boolean>;
}

export interface CaseRun {
  id: string;
  views: View[];
}

/** Runs `cases` under rmapp; views per case: after the start, then after each step. */
export async function runRounds(cases: Case[], d: RoundsDriver): Promise<Map<string, CaseRun>> {
  const runs = new Map<string, CaseRun>();
  await d.beforeRound(0, runs);
  for (const c of cases) runs.set(c.id, { id: await d.client().start(`conf.${c.id}`, {}), views: [] });
  const read = async (c: Case) => {
    const run = runs.get(c.id) as CaseRun;
    const row = await readRow(d.db, run.id);
    run.views.push(view(row.snapshot ?? { status: 'none' }));
  };
  await Promise.all(
    cases.map(async (c) => {
      await settle(d.db, (runs.get(c.id) as CaseRun).id, 0);
      await read(c);
    }),
  );
  const rounds = Math.max(...cases.map((c) => c.steps.length));
  for (let r = 1; r <= rounds; r++) {
    const ids = [...runs.values()].map((x) => x.id);
    const epochs = new Map<string, number>();
    for (const id of ids) epochs.set(id, (await readRow(d.db, id)).epoch);
    const replaced = await d.beforeRound(r, runs);
    await Promise.all(
      cases
        .filter((c) => c.steps.length >= r)
        .map(async (c) => {
          const run = runs.get(c.id) as CaseRun;
          const step = c.steps[r - 1];
          if (step && 'wait' in step) await sleep((step as { wait: number }).wait);
          else if (step) await d.client().send(run.id, step);
          await settle(d.db, run.id, eventsIn(c.steps, r), replaced ? epochs.get(run.id) : -1);
          await read(c);
        }),
    );
  }
  return runs;
}
