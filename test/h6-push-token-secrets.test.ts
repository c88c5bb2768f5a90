/**
 * Attacks on the token git pushes with (an App's installation token, which no configured list holds)
 * in the refusal of a commit and in a commit's message (helper 6), found by reading workspace.ts
 * `refuseSecrets` and `commitAll`: the service's masker knows only the configured secrets.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMasker } from '../src/rmapp/masking.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { secretFinder } from '../src/rmapp/secret-scan.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const cleanups = cleanupsAfterAll();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'h6-token-'));
  cleanups.push(() => runCommand(['rm', '-rf', dir]));
  return dir;
}

async function lastMessage(dir: string): Promise<string> {
  return (await runCommand(['git', 'log', '-1', '--format=%B'], { cwd: dir })).stdout;
}

describe('the token git pushes with (an App installation token), which no configured list holds', () => {
  const pushToken = `ghs_${'Q7fK2mZp9XvB4nT8wLr6YcD3hJ5sGa1uEo0i'}`;
  const b64 = Buffer.from(pushToken).toString('base64');

  async function workspaces() {
    const root = tempDir();
    const masker = createMasker([]);
    const w = new Workspaces({
      root: join(root, 'workspaces'),
      author: { name: 'rmapp', email: 'rmapp@example.com' },
      mask: masker.text,
      findSecret: secretFinder([]),
      token: async () => pushToken,
    });
    const remote = await createBareRemote(root, 'repo', { 'README.md': '# repo\n' });
    const prepared = await w.prepare({ runId: 'h6-token', remoteUrl: remote, branch: 'rmapp/h6', base: 'main' });
    // Pushed over HTTPS, as a GitHub repository is: the workspace checks the token it would push with.
    return { w, ws: { ...prepared, remoteUrl: 'https://github.com/o/r.git' } };
  }

  it('is not quoted by the refusal when a file name holds it base64-encoded', async () => {
    const { w, ws } = await workspaces();
    writeFileSync(join(ws.dir, `notes-${b64}.txt`), 'x\n');
    const err = await w.commitAll(ws, 'add notes').then(
      () => null,
      (e: Error & { code?: string; details?: unknown }) => e,
    );
    expect(err?.code, 'a file named after the token was committed').toBe('SECRET_IN_CHANGES');
    expect(err?.message, 'the refusal quotes the token (base64)').not.toContain(b64.slice(0, 40));
    expect(JSON.stringify(err?.details), "the refusal's details quote the token (base64)").not.toContain(b64.slice(0, 40));
  });

  it("is not pushed in a commit's message", async () => {
    const { w, ws } = await workspaces();
    writeFileSync(join(ws.dir, 'change.txt'), 'an ordinary change\n');
    const result = await w.commitAll(ws, `feat: a change\n\nsummary: ${b64}`).catch((err: Error) => err);
    if (result instanceof Error) return; // refused: nothing committed
    expect(await lastMessage(ws.dir), "the commit's message holds the push token (base64)").not.toContain(b64.slice(0, 40));
  });
});

describe('a file name holding a secret the masker does not mask', () => {
  it('is not shown by the refusal at all', async () => {
    const root = tempDir();
    const secret = 'sandbox-Secret-0f3a9c77e1';
    // A masker that knows nothing: the name is still what the check finds a secret in once "masked".
    const w = new Workspaces({
      root: join(root, 'workspaces'),
      author: { name: 'rmapp', email: 'rmapp@example.com' },
      mask: (text) => text,
      findSecret: secretFinder([{ label: 'the value of API_KEY (sandbox.env)', secrets: [secret] }]),
    });
    const remote = await createBareRemote(root, 'repo', { 'README.md': '# repo\n' });
    const ws = await w.prepare({ runId: 'h6-name', remoteUrl: remote, branch: 'rmapp/h6', base: 'main' });
    writeFileSync(join(ws.dir, `x-${secret}.txt`), 'x\n');
    const err = await w.commitAll(ws, 'add').then(
      () => null,
      (e: Error & { code?: string; details?: { file?: unknown } }) => e,
    );
    expect(err?.code).toBe('SECRET_IN_CHANGES');
    expect(err?.message, 'the refusal quotes the name holding the secret').not.toContain(secret);
    expect(err?.message).toContain('the name of a file (not shown');
    expect(err?.details?.file).toBeNull();
  });
});
