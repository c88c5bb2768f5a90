/**
 * Model-based tests of every registered workflow machine (test/helpers/all-machines.ts). For each,
 * `xstate/graph` enumerates paths over the outcomes of every step — success with each output, failure
 * in every error category, retry then success — every signal and every `after` timeout: shortest paths
 * (one per reachable state: the machines' contexts record how a state was reached, so that is every
 * path up to the loops' bounds), simple paths ending the run by another route (capped at 40 per
 * machine; none are cut today), and retry-then-success variants. Each path runs through the real engine
 * on PGlite with scripted steps, and the path kit checks it: end state, status, context and output as
 * predicted; every persisted snapshot restores into the same state and context; history and progress
 * events as the path says. A path that leaves the run going then cancels it and checks that too.
 *
 * The path counts per machine are printed at the end (README, "Model-based tests").
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPathKit, modelPaths, type ModelPaths, type PathCheck, type PathKit, type WorkflowPath } from 'rmapp/testing';
import { ISSUE_TEMPLATES } from '../src/machines/issue-implementation.ts';
import { allMachines, previousVersions } from './helpers/all-machines.ts';

const machines = allMachines();
const modelled = machines.filter((m) => !m.sameAs);
/** Paths checked at once: runs are independent; paths with a timeout take the clock alone. */
const CONCURRENCY = 6;

let kit: PathKit;
const rows: {
  machine: string;
  version: string;
  shortest: number;
  simple: string;
  retry: number;
  run: number;
  cancelled: number;
  snapshots: number;
  seconds: string;
}[] = [];

beforeAll(async () => {
  kit = await createPathKit(
    modelled.map((m) => m.def),
    // The kit's engine polls every 20 ms; here every run is started, signalled, retried and timed in this
    // process, which wakes its worker itself, so the poll only finds nothing — 2 PGlite queries each time,
    // on the one core this file runs on. Every 250 ms: 'PRReview|ReviewResponse' took 31–36 s of CPU
    // instead of 34–43 s (A/B, alternately, on the shared 2-core machine).
    { previousVersions, engine: { pollMs: 250 } },
  );
});

afterAll(async () => {
  await kit?.close();
  const total = rows.reduce((a, r) => ({ run: a.run + r.run, snapshots: a.snapshots + r.snapshots }), { run: 0, snapshots: 0 });
  const header = [
    'machine',
    'version',
    'shortest',
    'simple (new/found)',
    'retry',
    'paths run',
    'cancelled at end',
    'snapshots restored',
    's',
  ];
  const lines = rows.map((r) =>
    [r.machine, r.version, r.shortest, r.simple, r.retry, r.run, r.cancelled, r.snapshots, r.seconds].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(
    [
      fmt(header),
      fmt(widths.map((w) => '-'.repeat(w))),
      ...lines.map(fmt),
      `${total.run} paths, ${total.snapshots} persisted snapshots restored.`,
    ].join('\n'),
  );
});

async function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}

it('covers every registered machine, including each issue template', () => {
  const names = machines.map((m) => m.def.name);
  expect(names).toEqual(
    expect.arrayContaining([
      ...Object.keys(ISSUE_TEMPLATES),
      'PRReview',
      'ReviewResponse',
      'GitHubDelivery',
      'example.order',
      'test.approval',
      'test.parent',
    ]),
  );
  for (const m of machines.filter((x) => x.sameAs)) {
    expect(m.def.version, `${m.def.name} is covered as ${m.sameAs}`).toBe(machines.find((x) => x.def.name === m.sameAs)?.def.version);
  }
});

for (const m of modelled) {
  // 20–25 s for the largest machines on an idle 2-core machine; the budget allows for the file beside it.
  it(`${m.def.name}: every path through the engine`, { timeout: 180_000 }, async () => {
    const started = Date.now();
    let plan: ModelPaths;
    try {
      plan = modelPaths(m.def, m.paths);
    } catch (err) {
      throw new Error(
        `${m.def.name}: exploring its paths failed (${(err as Error).message}). Give its input and step outputs in PATH_OPTIONS in test/helpers/all-machines.ts.`,
      );
    }
    // Paths that move the clock go last, so the others keep running side by side.
    const ordered: WorkflowPath[] = [...plan.all].sort((a, b) => Number(hasTimer(a)) - Number(hasTimer(b)));
    const results: PathCheck[] = await pool(ordered, CONCURRENCY, (p) => kit.check(p));
    const problems = results.flatMap((r, i) => r.problems.map((p) => `[${ordered[i]?.kind}] ${ordered[i]?.description}: ${p}`));
    expect(problems).toEqual([]);
    // Every kind of outcome is really on some path.
    const descriptions = plan.all.map((p) => p.description).join('\n');
    const actors = Object.values(m.def.machine.implementations.actors ?? {}) as object[];
    if (actors.length) {
      expect(descriptions).toMatch(/xstate\.done\.actor/);
      expect(descriptions).toMatch(/xstate\.error\.actor/);
      expect(plan.retry.length).toBeGreaterThan(0);
    }
    if (actors.some((a) => !('getStateNodeById' in a)))
      for (const c of m.paths.errorCategories ?? []) expect(descriptions).toContain(`(${c})`);
    // Every execution of a step path gets its own idempotency key — also one that follows a failure the
    // machine handled (ReviewResponse: the second comment's PRReview child after the first one failed),
    // so a side effect deduplicated by key (the reply to a review comment) is never skipped for another.
    // Checked here, on this machine's own paths, so the test holds when run alone (`-t`).
    const sharedKeys = results.flatMap((r, i) => r.sharedKeys.map((k) => `[${ordered[i]?.description}]: ${k}`));
    expect(sharedKeys.slice(0, 5), `${m.def.name}: step executions that shared an idempotency key`).toEqual([]);
    rows.push({
      machine: m.def.name,
      version: m.def.version,
      shortest: plan.shortest.length,
      simple: `${plan.simple.length}/${plan.simpleFound}`,
      retry: plan.retry.length,
      run: plan.all.length,
      cancelled: results.filter((r) => r.cancelled).length,
      snapshots: results.reduce((a, r) => a + r.snapshots, 0),
      seconds: ((Date.now() - started) / 1000).toFixed(1),
    });
  });
}

function hasTimer(p: WorkflowPath): boolean {
  return p.events.some((e) => e.type.startsWith('xstate.after.'));
}
