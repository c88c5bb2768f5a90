/**
 * The local GitHub's web pages that `rmapp demo` serves: the branch page the progress comment links to
 * (`/{owner}/{repo}/tree/{branch}`) shows the branch's commits and files from the real bare remote,
 * escaped; a name git would not take, or a repository the emulator does not know, is a 404.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBareRemote } from '../src/rmapp/demo/git-remote.ts';
import { GitHubEmulator } from '../src/rmapp/demo/github-emulator.ts';
import { githubWebPage } from '../src/rmapp/demo/github-web.ts';

const emulator = new GitHubEmulator('t0ken', 'rmapp[bot]');
let web = '';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-demo-web-'));
  const remote = await createBareRemote(dir, 'greeter', { 'greet.mjs': 'export const greet = 1;\n', 'docs/<b>.md': 'x\n' }, [
    'rmapp/issue-1',
  ]);
  emulator.repos.set('demo/greeter', { default_branch: 'main' });
  const api = await emulator.start({
    web: (path) => githubWebPage(emulator, path, { gitDir: (owner, repo) => (`${owner}/${repo}` === 'demo/greeter' ? remote : undefined) }),
  });
  web = api.replace(/\/api\/v3$/, '');
});
afterAll(() => emulator.stop());

const get = async (path: string) => {
  const res = await fetch(`${web}${path}`);
  return { status: res.status, text: await res.text() };
};

it('the branch page lists its commits and files, escaped', async () => {
  const page = await get('/demo/greeter/tree/rmapp/issue-1');
  expect(page.status).toBe(200);
  expect(page.text).toContain('at rmapp/issue-1');
  expect(page.text).toMatch(/<code>[0-9a-f]{7,}<\/code> <b>t<\/b>/);
  expect(page.text).toContain('<pre>init</pre>');
  expect(page.text).toContain('<code>greet.mjs</code>');
  expect(page.text).toContain('<code>docs/&#60;b&#62;.md</code>');
  expect(page.text).not.toContain('<b>.md');
});

it('unknown branches and repositories, and names git would read as options or ranges, are a 404', async () => {
  for (const path of [
    '/demo/greeter/tree/nope',
    '/demo/other/tree/main',
    '/demo/greeter/tree/main..rmapp/issue-1',
    '/demo/greeter/tree/--output=x',
    '/demo/greeter/tree/main@{1}',
    '/demo/greeter/tree/main%00x',
  ]) {
    expect((await get(path)).status, path).toBe(404);
  }
  expect((await get('/demo/greeter/tree/main')).status).toBe(200);
});
