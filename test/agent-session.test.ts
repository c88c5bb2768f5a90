/**
 * An agent session inside a run, on Postgres: its transcript is an artifact of the step, stored safely
 * when the agent's output is hostile (NUL bytes, lone surrogates, a secret the masker knows, a 10 MB
 * line) and masked; and cancelling the run stops the agent — even one that ignores SIGTERM — with the
 * transcript saying so.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { createEngine, type Database } from '../src/index.ts';
import type { Transcript } from '../src/rmapp/agents/index.ts';
import { createMasker } from '../src/rmapp/masking.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { agentWorkflow, fakeAgent } from './helpers/agent-workflow.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { testSandbox } from './helpers/sandbox.ts';

const store = useTestDatabase();
let db: Database;
beforeAll(() => {
  db = store.db;
});

const SECRET = 'sk-ant-api03-fakefakefakefakefakefake-SECRETVALUE';

it('a hostile transcript (NUL, lone surrogates, a secret, a 10 MB line) is stored in Postgres, bounded and masked', async () => {
  const engine = createEngine({
    database: db,
    workflows: [
      agentWorkflow({
        kind: 'claude-code',
        command: fakeAgent('claude'),
        timeoutMs: 60_000,
        sandbox: testSandbox,
        masker: createMasker([SECRET]),
      }),
    ],
    pollMs: 20,
  });
  await engine.startWorker();
  try {
    const id = await engine.start('test.agent', {
      cwd: mkdtempSync(join(tmpdir(), 'rmapp-hostile-')),
      prompt: `HOSTILE\nSECRET ${SECRET}\nTURNS 2`,
    });
    const run = await engine.waitFor(id, { timeoutMs: 60_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const artifacts = await engine.artifacts(id);
    const entry = artifacts.find((a) => a.name.startsWith('transcript/'));
    expect(entry?.name).toMatch(/^transcript\/.*working\/attempt-1$/);
    expect(entry?.bytes, 'bounded far below the 10 MB the agent printed').toBeLessThan(3 * 1024 * 1024);
    const stored = (await engine.getArtifact(id, entry?.name as string)) as Transcript;
    const json = JSON.stringify(stored);
    expect(json).not.toContain(SECRET);
    expect(json).toContain('[REDACTED]');
    expect(json).not.toMatch(/\\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    const hostile = stored.entries.find((e) => e.kind === 'tool_result' && e.output.startsWith('nul:'));
    expect(hostile?.kind === 'tool_result' && hostile.output).toBe('nul:\uFFFD lone:\uFFFD secret:[REDACTED] end');
    // The 10 MB line is not JSON: kept as output, cut to its start, and the stream parsed on after it.
    expect(stored.entries.some((e) => e.kind === 'output' && /line cut/.test(e.text) && e.text.length < 20_000)).toBe(true);
    expect(stored).toMatchObject({ status: 'succeeded', usage: { turns: 3, toolCalls: 2 } });
  } finally {
    await engine.stop();
  }
});

it('cancelling the run stops the agent, even one that ignores SIGTERM, and its transcript says cancelled', async () => {
  // Driver none: the agent is a direct child, so its pid tells whether it is gone.
  const sandbox = createSandbox({ driver: 'none' });
  const engine = createEngine({
    database: db,
    workflows: [
      agentWorkflow({ kind: 'codex', command: [...fakeAgent('codex'), 'exec'], timeoutMs: 120_000, sandbox, saveIntervalMs: 100 }),
    ],
    pollMs: 20,
  });
  await engine.startWorker();
  try {
    const cwd = mkdtempSync(join(tmpdir(), 'rmapp-cancel-'));
    const id = await engine.start('test.agent', { cwd, prompt: 'TURNS 3\nHANG\nIGNORE_TERM' });
    const name = async () => (await engine.artifacts(id)).find((a) => a.name.startsWith('transcript/'))?.name;
    // The live transcript shows the agent's first command while it still runs.
    await until(
      async () => {
        const n = await name();
        const t = n ? ((await engine.getArtifact(id, n)) as Transcript) : null;
        return t?.status === 'running' && t.usage.toolCalls > 0;
      },
      30_000,
      'the live transcript',
    );
    const argv = JSON.parse(readFileSync(join(cwd, '.fake-agent-argv.json'), 'utf8')) as string[];
    expect(argv).toContain('--json');
    const pid = Number(readFileSync(join(cwd, '.fake-agent-pid'), 'utf8'));
    expect(() => process.kill(pid, 0), 'the agent runs').not.toThrow();

    await engine.cancel(id, 'stop it');
    const run = await engine.waitFor(id, { timeoutMs: 30_000 });
    expect(run.status).toBe('cancelled');
    await until(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      10_000,
      'the agent process to be gone',
    );
    // The step's last save follows the agent's exit (the run may be recorded cancelled a moment before).
    const stored = async () => (await engine.getArtifact(id, (await name()) as string)) as Transcript;
    await until(async () => (await stored()).status !== 'running', 10_000, 'the final transcript');
    expect((await stored()).status).toBe('cancelled');
    expect((await stored()).entries.some((e) => e.kind === 'tool_call' && e.name === 'shell')).toBe(true);
  } finally {
    await engine.stop();
  }
});
