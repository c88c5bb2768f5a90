/**
 * Persisted snapshots of every released workflow version, replayed by today's code. Runs live for days
 * and outlast deploys; what protects them is that a snapshot persisted by a released version still
 * restores and finishes. For each released machine (the service's and the built-in registry's, from
 * test/helpers/all-machines.ts), `test/fixtures/snapshots/<workflow>@<version>.json` holds the run as
 * persisted after each event of every path that completes it. This test inserts each one as a
 * waiting run, lets the engine resume it on the definition registered for its version (current, or
 * kept in `previousVersions`), and drives it to the end of its path with scripted steps, checking it
 * as the model-based tests do.
 *
 * A fixture of the current version is written when missing (unless `CI` is set);
 * `UPDATE_SNAPSHOT_FIXTURES=1` writes them again. A fixture whose version is no longer registered
 * fails: keep the old definition in `previousVersions` (all-machines.ts), or delete the fixture once no
 * run of that version can exist (`rmapp versions check`).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPathKit, workflowPaths, type PathKit, type PathPoint, type WorkflowPath } from 'rmapp/testing';
import { findRestoreProblem } from '../src/state_machine/snapshot-check.ts';
import { canonicalJson } from '../src/state_machine/testing/restore-check.ts';
import { allMachines, previousVersions } from './helpers/all-machines.ts';
import { ROOT } from './helpers/processes.ts';

const DIR = join(ROOT, 'test/fixtures/snapshots');
const released = allMachines().filter((m) => m.released && !m.sameAs);

/** One fixture file: a released version's runs, persisted part-way through paths that complete them. */
interface SnapshotFixture {
  workflow: string;
  version: string;
  about: string;
  paths: { path: WorkflowPath; points: PathPoint[] }[];
}

const fileOf = (workflow: string, version: string) => join(DIR, `${workflow}@${version}.json`);
let kit: PathKit;

beforeAll(async () => {
  kit = await createPathKit(
    released.map((m) => m.def),
    { previousVersions },
  );
});
afterAll(async () => {
  await kit?.close();
});

/** The run after each event of every shortest path that completes it (not in a failure state), without repeats. */
async function capture(m: (typeof released)[number]): Promise<SnapshotFixture> {
  const failures = m.def.failureStates ?? [];
  const paths = workflowPaths(m.def, { ...m.paths, errorCategories: ['permanent'] }).filter(
    (p) => p.status === 'done' && !(typeof p.state === 'string' && failures.includes(p.state)),
  );
  const seen = new Set<string>();
  const out: SnapshotFixture['paths'] = [];
  for (const path of paths) {
    const points = (await kit.capture(path)).filter((p) => {
      const key = canonicalJson(p.snapshot);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (points.length) out.push({ path, points });
  }
  return {
    workflow: m.def.name,
    version: m.def.version,
    about:
      'Snapshots persisted by this released version, written by test/snapshot-fixtures.test.ts. Keep while runs of this version can exist.',
    paths: out,
  };
}

it('every released version has its fixture', async () => {
  mkdirSync(DIR, { recursive: true });
  const missing: string[] = [];
  for (const m of released) {
    const file = fileOf(m.def.name, m.def.version);
    if (existsSync(file) && !process.env.UPDATE_SNAPSHOT_FIXTURES) continue;
    if (process.env.CI && !process.env.UPDATE_SNAPSHOT_FIXTURES) {
      missing.push(file);
      continue;
    }
    const fixture = await capture(m);
    expect(fixture.paths.length, `${m.def.name}: no path completes it`).toBeGreaterThan(0);
    writeFileSync(file, `${JSON.stringify(fixture, null, 1)}\n`);
  }
  expect(missing, 'write them with: UPDATE_SNAPSHOT_FIXTURES=1 npx vitest run test/snapshot-fixtures.test.ts').toEqual([]);
});

it('restores every fixture with today’s code and runs it to completion', async () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(released.length);
  const registered = [...released.map((m) => m.def), ...previousVersions];
  const problems: string[] = [];
  let resumed = 0;
  for (const file of files) {
    const fixture = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as SnapshotFixture;
    const def = registered.find((d) => d.name === fixture.workflow && d.version === fixture.version);
    if (!def) {
      const current = registered.find((d) => d.name === fixture.workflow);
      const point = fixture.paths[0]?.points[0];
      const restore = current && point ? findRestoreProblem(current.machine, point.snapshot) : null;
      problems.push(
        `${file}: version ${fixture.version} of ${fixture.workflow} is not registered, so its runs would be stranded` +
          `${current ? ` (current ${current.version}${restore ? `: ${restore}` : ''})` : ''}. ` +
          'Keep the old definition in previousVersions (test/helpers/all-machines.ts), or delete the fixture once no run of that version exists.',
      );
      continue;
    }
    const checks = await Promise.all(
      fixture.paths.flatMap(({ path, points }) => points.map(async (point) => ({ point, path, check: await kit.check(path, point) }))),
    );
    for (const { point, path, check } of checks) {
      resumed += 1;
      for (const p of check.problems) problems.push(`${file} [${path.description}] resumed after ${point.eventsApplied} events: ${p}`);
      if (check.run && check.run.workflowVersion !== fixture.version)
        problems.push(`${file}: the resumed run ran on ${check.run.workflowVersion}`);
    }
  }
  console.log(`${resumed} persisted runs from ${files.length} fixture files restored and run to completion.`);
  expect(problems).toEqual([]);
});
