/**
 * A secret written through `.gitattributes` `working-tree-encoding` (helper 6): git stores such a file's
 * text converted from the declared encoding to UTF-8, and a checkout converts it back. A file written in
 * UTF-8 under `working-tree-encoding=UTF-16LE` went into the blob as other characters — no form the
 * commit check knows — and came back whole in every clone of the pushed branch. Found by reading
 * workspace.ts `refuseSecrets` (it reads `git diff --cached`, the blobs, not what a checkout writes).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
const TOKEN = `ghp_${'Zx9Lm2Qr7Tv4Wb8Ny3Kc6Hd1Fg5Js0Pa2Eu7'}`;
const LABEL = "the service's own GitHub token (github.token, GITHUB_TOKEN)";

async function setUp() {
  const root = mkdtempSync(join(tmpdir(), 'h6-wte-'));
  cleanups.push(() => runCommand(['rm', '-rf', root]));
  const workspaces = new Workspaces({
    root: join(root, 'workspaces'),
    author: { name: 'rmapp', email: 'rmapp@example.com' },
    mask: createMasker([TOKEN]).text,
    findSecret: secretFinder([{ label: LABEL, secrets: [TOKEN] }]),
  });
  const remote = await createBareRemote(root, 'repo', { 'README.md': '# repo\n' });
  const ws = await workspaces.prepare({ runId: 'h6-wte', remoteUrl: remote, branch: 'rmapp/h6', base: 'main' });
  /** The file as a clone of the pushed branch checks it out. */
  const cloned = async (file: string) => {
    const dir = join(root, 'clone');
    const r = await runCommand(['git', 'clone', '-q', '-b', ws.branch, remote, dir]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    return readFileSync(join(dir, file));
  };
  return { workspaces, ws, cloned };
}

describe('a file .gitattributes gives a working-tree-encoding', () => {
  it('holding the token in its working-tree bytes is refused, not pushed for a clone to decode', async () => {
    const { workspaces, ws, cloned } = await setUp();
    writeFileSync(join(ws.dir, '.gitattributes'), 'notes.txt working-tree-encoding=UTF-16LE\n');
    writeFileSync(join(ws.dir, 'notes.txt'), `token=${TOKEN}\n\n`);
    const outcome = await workspaces.commitAll(ws, 'add notes').then(
      () => 'committed',
      (err: Error & { code?: string }) => err,
    );
    if (typeof outcome === 'string') {
      await workspaces.push(ws);
      expect((await cloned('notes.txt')).toString('utf8'), 'a clone of the pushed branch checks out the token').not.toContain(TOKEN);
    } else {
      expect(outcome.code).toBe('SECRET_IN_CHANGES');
      expect(outcome.message).toContain('notes.txt, line 1');
      expect(outcome.message).not.toContain(TOKEN);
    }
  });

  it('in its own encoding, holding no secret, is committed as it is', async () => {
    const { workspaces, ws, cloned } = await setUp();
    writeFileSync(join(ws.dir, '.gitattributes'), 'script.ps1 working-tree-encoding=UTF-16LE\n');
    const text = Buffer.from('Write-Host "hello"\r\n', 'utf16le');
    writeFileSync(join(ws.dir, 'script.ps1'), text);
    expect((await workspaces.commitAll(ws, 'add script')).committed).toBe(true);
    await workspaces.push(ws);
    expect((await cloned('script.ps1')).equals(text)).toBe(true);
  });
});
