/**
 * A repository's commands (`.github/rmapp.yml`: setup, test, lint) run in the sandbox like the agent,
 * but they are written by whoever can push to the default branch: a host file their argv names must
 * not become visible in the sandbox the way the operator's own script does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSetup, runChecks } from '../src/rmapp/repository-commands.ts';
import { parseRepositoryConfig } from '../src/rmapp/repository-config.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { testSandbox } from './helpers/sandbox.ts';

const host = mkdtempSync(join(tmpdir(), 'adv-host-'));
const secret = join(host, 'service.env');
writeFileSync(secret, 'GITHUB_APP_PRIVATE_KEY=adv-secret-value\n');
const ws = mkdtempSync(join(tmpdir(), 'adv-ws-'));
afterAll(() => {
  rmSync(host, { recursive: true, force: true });
  rmSync(ws, { recursive: true, force: true });
});

const tests = { command: ['true'], timeoutMs: 60_000, sandbox: testSandbox };
const settings = (yaml: string) => ({ config: parseRepositoryConfig(yaml), instructionFiles: [] });

describe("a repository's command cannot read a host file by naming it", () => {
  it('test', async () => {
    const r = await runChecks(tests, settings(`test: [cat, ${secret}]\n`), { cwd: ws });
    expect(r.output, 'the test command read the host file').not.toContain('adv-secret-value');
    expect(r.passed).toBe(false);
  });

  it('lint', async () => {
    const r = await runChecks(tests, settings(`lint: [cat, ${secret}]\n`), { cwd: ws });
    expect(r.output, 'the lint command read the host file').not.toContain('adv-secret-value');
  });

  it('setup (its failure message is posted on the issue)', async () => {
    const workspaces = new Workspaces({ root: ws, author: { name: 'T', email: 't@example.com' } });
    const err = await ensureSetup(
      workspaces,
      { dir: ws, branch: 'b', remoteUrl: '' },
      settings(`setup: [[cat, ${secret}, /nonexistent]]\n`),
      tests,
    ).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message, 'the setup command read the host file').not.toContain('adv-secret-value');
  });

  it("the operator's own command still sees the file it names", async () => {
    const r = await runChecks({ ...tests, command: ['cat', secret] }, settings(''), { cwd: ws });
    expect(r.output).toContain('adv-secret-value');
  });
});
