/**
 * What a repository's setup commands leave untracked is excluded from rmapp's commits in that workspace
 * only (`Workspaces.excludeUntracked`): one line of `.git/info/exclude` per path, naming exactly that
 * path. A file name is the repository's to choose: one holding a line break wrote a pattern of its own
 * (`x\n*` wrote `*`, and every file the agent then made was left out of its commit), and one ending in
 * a space named another file.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

it('untracked names holding a line break or a trailing space exclude themselves and nothing else', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-exclude-'));
  const remote = await createBareRemote(tmp, 'exclude', { 'a.txt': 'a\n' });
  const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'exclude-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  // What a setup command left behind.
  for (const name of ['x\n*', 'y\r\n!keep', 'trail ', 'glob[1]?.txt']) writeFileSync(join(ws.dir, name), 'setup\n');
  mkdirSync(join(ws.dir, 'node_modules'));
  writeFileSync(join(ws.dir, 'node_modules', 'dep.js'), 'dep\n');
  const excluded = await workspaces.excludeUntracked(ws);
  expect(excluded.sort()).toEqual(['glob[1]?.txt', 'node_modules/', 'trail ', 'x\n*', 'y\r\n!keep'].sort());
  // Then the agent's work: new files beside those, and ones named like them but for the odd character.
  for (const name of ['new.txt', 'trail', 'keep', 'glob1.txt']) writeFileSync(join(ws.dir, name), 'agent\n');
  const { committed, sha } = await workspaces.commitAll(ws, 'the agent');
  expect(committed).toBe(true);
  const files = (await workspaces.changedFiles(ws, null, sha)).sort();
  expect(files, 'the agent’s files committed, the setup’s left out').toEqual(['glob1.txt', 'keep', 'new.txt', 'trail']);
});
