/**
 * Versions across a deploy, on real Postgres: a run keeps the version it started with; `rmapp versions
 * check` (a real CLI process) names the runs a deploy would strand — a removed state, a renamed step —
 * and exits 1; with the old version kept in `previousVersions` the check passes and the old runs finish
 * on the old definition while new runs start on the new one.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { killAll, ROOT, runRmapp, until } from './helpers/processes.ts';
import { releasePublishGate, versioned } from './fixtures/versioned-workflows.ts';

// Bundled for the run (test/helpers/fixture-bundles.ts): each command starts without compiling TypeScript.
const MODULE = fixtureModule(`${ROOT}test/fixtures/versioned-workflows.ts`);
let testDb: TestDatabase;
const engines: Engine[] = [];
const check = (deploy: string, ...args: string[]) =>
  runRmapp(['--workflows', MODULE, 'versions', 'check', ...args], { DATABASE_URL: testDb.url, RMAPP_TEST_DEPLOY: deploy });
const engine = (options: Partial<Parameters<typeof createEngine>[0]>) => {
  const e = createEngine({ database: { url: testDb.url }, workflows: [], pollMs: 50, ...options });
  engines.push(e);
  return e;
};

let inReview: string;
let publishing: string;
let finished: string;

beforeAll(async () => {
  testDb = await createTestDatabase();
  // Released: v1. One run waits in `review`, one is in the middle of `publish`, one has finished.
  const v1 = engine({ workflows: [versioned('v1')] });
  await v1.startWorker();
  inReview = await v1.start('test.versioned', {}, { runId: 'run-in-review' });
  publishing = await v1.start('test.versioned', { waitForGate: true }, { runId: 'run-publishing' });
  finished = await v1.start('test.versioned', {}, { runId: 'run-finished' });
  // A signal is applied only in a state that accepts it: approve once they wait in review.
  for (const id of [inReview, publishing, finished])
    await until(async () => (await v1.get(id)).state === 'review', 20_000, `${id} to wait in review`);
  await v1.send(publishing, { type: 'approve' });
  await v1.send(finished, { type: 'approve' });
  expect((await v1.waitFor(finished, { timeoutMs: 20_000 })).status).toBe('succeeded');
  await until(
    async () => (await v1.get(inReview)).state === 'review' && (await v1.get(publishing)).state === 'publishing',
    20_000,
    'the v1 runs to settle',
  );
  await v1.stop({ graceMs: 0 });
});

afterAll(async () => {
  for (const e of engines) await e.stop({ graceMs: 0 }).catch(() => {});
  killAll();
  await testDb?.drop();
});

it('versions check passes while the running version is deployed', async () => {
  const r = await check('v1');
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/2 unfinished runs: 2 on a current version, 0 on a previous version, 0 stranded\./);
});

it('a deploy that removes a state: versions check names the stranded runs and exits 1', async () => {
  const r = await check('v2');
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/2 unfinished runs: 0 on a current version, 0 on a previous version, 2 stranded\./);
  const line = r.stdout.split('\n').findIndex((l) => l.includes(inReview) && l.includes('review'));
  expect(line).toBeGreaterThan(0);
  expect(r.stdout.split('\n')[line + 1]).toMatch(
    /cannot restore it \(root: state "review" does not exist in the machine\): keep the definition of version \w+ in previousVersions/,
  );
  // The publishing run's state still exists in v2, but no worker resumes a run on another version.
  expect(r.stdout).toMatch(new RegExp(`${publishing}\\s+test\\.versioned@${versioned('v1').version}\\s+\\w+\\s+publishing`));
  expect(r.stdout).toMatch(/a run resumes only on its own version/);
  expect(r.stdout).not.toContain(finished);

  const json = await check('v2', '--json');
  expect(json.code).toBe(1);
  const report = JSON.parse(json.stdout) as { stranded: number; runs: { runId: string; verdict: string; reason: string }[] };
  expect(report.stranded).toBe(2);
  expect(report.runs.find((x) => x.runId === inReview)).toMatchObject({
    verdict: 'stranded',
    reason: expect.stringMatching(/state "review" does not exist/),
  });
});

it('a deploy that renames a running step: versions check names the child src that is gone', async () => {
  const r = await check('v3', '--json');
  expect(r.code).toBe(1);
  const report = JSON.parse(r.stdout) as { runs: { runId: string; verdict: string; reason: string }[] };
  expect(report.runs.find((x) => x.runId === publishing)).toMatchObject({
    verdict: 'stranded',
    reason: expect.stringMatching(/uses actor "publish", which the machine no longer provides/),
  });
});

it('with the old version kept, the check passes and old runs finish on it while new runs start on the new one', async () => {
  const r = await check('v2+v1');
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/2 unfinished runs: 0 on a current version, 2 on a previous version, 0 stranded\./);

  // Without it, the deployed worker leaves the old runs waiting, saying why.
  const bare = engine({ workflows: [versioned('v2')] });
  expect((await bare.get(inReview)).statusMessage).toMatch(/not registered/);

  const v2 = engine({ workflows: [versioned('v2')], previousVersions: [versioned('v1')] });
  await v2.startWorker();
  releasePublishGate();
  await v2.send(inReview, { type: 'approve' });
  const [a, b] = [await v2.waitFor(inReview, { timeoutMs: 30_000 }), await v2.waitFor(publishing, { timeoutMs: 30_000 })];
  for (const run of [a, b]) expect(run).toMatchObject({ status: 'succeeded', state: 'done', workflowVersion: versioned('v1').version });
  const states = (await v2.history(inReview)).filter((h) => h.type === 'state.entered').map((h) => h.state);
  expect(states).toEqual(['drafting', 'review', 'publishing', 'done']);

  const fresh = await v2.start('test.versioned', {});
  expect(await v2.waitFor(fresh, { timeoutMs: 30_000 })).toMatchObject({ status: 'succeeded', workflowVersion: versioned('v2').version });
  expect((await v2.history(fresh)).filter((h) => h.type === 'state.entered').map((h) => h.state)).toEqual([
    'drafting',
    'publishing',
    'done',
  ]);

  expect(() => engine({ workflows: [versioned('v2')], previousVersions: [versioned('v2')] })).toThrow(/registered twice/);
  const after = await check('v2');
  expect(after.code, after.stdout).toBe(0);
});
