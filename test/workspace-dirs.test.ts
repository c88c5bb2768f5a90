/**
 * One workspace directory per run id, always inside the root: ids that differ only in characters a file
 * name cannot hold (`a/b`, `a_b`, `a:b`, `a@b`) were one directory — a run resumed in another's work, a
 * finished run's removal deleted another's — and the id `..` named the root's parent, which a finished
 * run's removal (`rm -rf`) deleted. Ids of only dots between slashes are refused at start.
 */
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, ValidationError } from '../src/index.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';

const root = join(mkdtempSync(join(tmpdir(), 'rmapp-dirs-')), 'ws');
const workspaces = new Workspaces({ root, author: { name: 'rmapp', email: 'rmapp@example.com' } });

it('every run id gets its own directory, a direct child of the root', () => {
  const ids = [
    'a/b',
    'a_b',
    'a:b',
    'a@b',
    'a-b',
    'a.b',
    '..',
    '.',
    '...',
    '.hidden',
    '_hidden',
    'acme/widgets/issue/1/k',
    'x'.repeat(200),
    `${'x'.repeat(199)}y`,
  ];
  const dirs = ids.map((id) => workspaces.dirOf(id));
  for (const [i, dir] of dirs.entries()) {
    expect(dirname(dir), `the directory of ${JSON.stringify(ids[i])}`).toBe(root);
    expect(relative(root, dir).startsWith('.'), `${JSON.stringify(ids[i])} → ${dir}`).toBe(false);
  }
  const shared = ids.filter((_, i) => dirs.indexOf(dirs[i] as string) !== i);
  expect(shared, 'ids whose directory an earlier id has').toEqual([]);
  // Ids a file name can hold keep their name (workspaces made before keep theirs).
  expect(workspaces.dirOf('a_b')).toBe(join(root, 'a_b'));
  expect(workspaces.dirOf('run-1.x')).toBe(join(root, 'run-1.x'));
});

it('a workspace made under the old naming is found by the run id it records, and only by it; never through a symlink', () => {
  const legacy = join(root, 'acme_widgets_issue_7_k');
  mkdirSync(join(legacy, '.git'), { recursive: true });
  writeFileSync(join(legacy, '.git', 'rmapp-run-id'), 'acme/widgets/issue/7/k');
  expect(workspaces.dirOf('acme/widgets/issue/7/k'), 'the run that made it').toBe(legacy);
  expect(workspaces.dirOf('acme/widgets:issue/7/k'), 'another id of the same old name').not.toBe(legacy);
  // The plain id equal to that name is another run: not in `acme/widgets/issue/7/k`'s checkout.
  expect(workspaces.dirOf('acme_widgets_issue_7_k'), 'the plain id equal to its name').not.toBe(legacy);
  expect(dirname(workspaces.dirOf('acme_widgets_issue_7_k'))).toBe(root);
  // A symlink under the old name is not followed out of the root.
  const outside = mkdtempSync(join(tmpdir(), 'rmapp-outside-'));
  mkdirSync(join(outside, '.git'), { recursive: true });
  writeFileSync(join(outside, '.git', 'rmapp-run-id'), 'x:y');
  symlinkSync(outside, join(root, 'x_y'));
  expect(workspaces.dirOf('x:y'), 'an old-named symlink').not.toBe(join(root, 'x_y'));
  expect(dirname(workspaces.dirOf('x:y'))).toBe(root);
});

it('a run id with a part of only dots is refused at start, naming the rule', async () => {
  const wf = defineWorkflow({
    name: 'test.dots',
    input: z.object({}),
    machine: setup({}).createMachine({ initial: 'a', states: { a: { type: 'final' } } }),
  });
  const engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [wf], logger: silentLogger });
  try {
    for (const runId of ['..', '.', 'a/../b', 'a/./b', '../x', 'x/..']) {
      const err = await engine.start(wf, {}, { runId }).catch((e: unknown) => e);
      expect(err, runId).toBeInstanceOf(ValidationError);
      expect((err as Error).message, runId).toMatch(/only dots/);
    }
    expect(await engine.start(wf, {}, { runId: 'a..b/.c/d.' }), 'dots next to other characters').toBe('a..b/.c/d.');
    expect(
      (await engine.list({ limit: 10 })).map((r) => r.id),
      'runs stored',
    ).toEqual(['a..b/.c/d.']);
  } finally {
    await engine.stop();
  }
});

it('a plain run id keeps its directory when an old-named run that held its name finishes', async () => {
  // Before the upgrade, run `p/q` got the directory `p_q`; after it, run `p_q` got a hashed one.
  const legacy = join(root, 'p_q');
  mkdirSync(join(legacy, '.git'), { recursive: true });
  writeFileSync(join(legacy, '.git', 'rmapp-run-id'), 'p/q');
  const first = workspaces.dirOf('p_q');
  expect(first, 'the plain id beside an old-named run').not.toBe(legacy);
  mkdirSync(join(first, '.git'), { recursive: true });
  writeFileSync(join(first, '.git', 'rmapp-run-id'), 'p_q');
  // `p/q` succeeds and its workspace is removed: `p_q` stays where its work is.
  await workspaces.removeRun('p/q');
  expect(workspaces.dirOf('p_q'), 'the same run, after the other one left').toBe(first);
  await workspaces.removeRun('p_q');
  expect(
    readdirSync(root).filter((n) => n.startsWith('p_q')),
    'directories of p_q left',
  ).toEqual([]);
});
