/**
 * The body of the model-based tests (test/model-based*.test.ts; what each path proves is in
 * test/model-based.test.ts). The machines are split over three files, so that they run side by side
 * on the two cores: in one file every machine took 396 s of the 1,092 s clean-clone run — one PGlite
 * process on one core — and, with two files beside it on a loaded machine, its largest machines ran
 * out of their budget. {@link MODEL_FILES} says which file takes which machine; a machine in no list
 * (a new one) is taken by test/model-based.test.ts, so it is covered with no new entry.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPathKit, modelPaths, type ModelPaths, type PathCheck, type PathKit, type WorkflowPath } from 'rmapp/testing';
import { allMachines, previousVersions, type MachineModel } from './all-machines.ts';

export const machines = allMachines();
const modelled = machines.filter((m) => !m.sameAs);
/** Paths checked at once: runs are independent; paths with a timeout take the clock alone. */
const CONCURRENCY = 6;

/**
 * The machines of the other model-based files, by file; balanced by their time alone (poll every
 * 250 ms): BugFix 75 s + DocsUpdate 25 s; ComplexFeature 54 s + ReviewResponse 33 s; the rest
 * (IssueImplementation 42 s, PRReview 16 s, the small ones 17 s) in test/model-based.test.ts.
 */
export const MODEL_FILES = {
  bugfixDocs: ['BugFix', 'DocsUpdate'],
  complexReview: ['ComplexFeature', 'ReviewResponse'],
} as const;

/** The machines `file` takes: its list, or for `rest` every machine in no list. */
export function machinesOf(file: keyof typeof MODEL_FILES | 'rest'): MachineModel[] {
  const listed = new Set<string>(Object.values(MODEL_FILES).flat());
  return file === 'rest'
    ? modelled.filter((m) => !listed.has(m.def.name))
    : modelled.filter((m) => (MODEL_FILES[file] as readonly string[]).includes(m.def.name));
}

/** Registers, in the calling test file, one test per machine of `mine`: every path through the engine. */
export function modelBasedTests(mine: MachineModel[]): void {
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
      mine.map((m) => m.def),
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

  for (const m of mine) {
    // 40–75 s alone for the largest machines on the shared 2-core machine; the budget (against a hang,
    // not a timing check) allows for two files beside it and a loaded machine, where 180 s ran out.
    it(`${m.def.name}: every path through the engine`, { timeout: 600_000 }, async () => {
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
}

function hasTimer(p: WorkflowPath): boolean {
  return p.events.some((e) => e.type.startsWith('xstate.after.'));
}
