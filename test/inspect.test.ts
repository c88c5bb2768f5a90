/** `rmapp serve --inspect <ws-url>`: every run's actors stream to a Stately Inspector WebSocket endpoint, secrets masked. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { defineWorkflow, step, WorkflowError } from '../src/index.ts';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startService } from '../src/rmapp/service.ts';
import { until } from './helpers/processes.ts';

const SECRET = 'sekret-token-value-123';
const GITHUB_LIKE = `ghp_${'a1B2c3D4e5'.repeat(4)}`;

it('streams actors, events and snapshots to the inspector with secret fields masked', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const received: string[] = [];
  wss.on('connection', (socket) => socket.on('message', (data) => received.push(String(data))));
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;

  // The secret also comes back in a step's output, a step's error and the machine's output — the
  // snapshot fields the inspector's own sanitizers do not cover.
  const machine = setup({
    actors: {
      call: step(async ({ input }: { input: { token: string } }) => ({ echoed: `value ${input.token}`, github: GITHUB_LIKE })),
      fail: step(async ({ input }: { input: { token: string } }) => {
        throw new WorkflowError(`upstream said: bad credentials ${input.token}`, { code: 'UPSTREAM', category: 'permanent' });
      }),
    },
  }).createMachine({
    id: 'inspected',
    context: ({ input }: { input: { apiToken: string; note: string } }) => ({ apiToken: input.apiToken, note: input.note, said: '' }),
    initial: 'calling',
    states: {
      calling: {
        invoke: {
          src: 'call',
          input: ({ context }) => ({ token: context.apiToken }),
          onDone: { target: 'failing', actions: assign({ said: ({ event }) => event.output.echoed }) },
        },
      },
      failing: { invoke: { src: 'fail', input: ({ context }) => ({ token: context.apiToken }), onError: 'done' } },
      done: { type: 'final' },
    },
    output: ({ context }) => ({ said: context.said, token: context.apiToken, note: `kept ${context.apiToken}` }),
  });
  const workflow = defineWorkflow({ name: 'test.inspected', machine, input: z.object({ apiToken: z.string(), note: z.string() }) });
  const config = await loadConfig({
    env: { PORT: '0', RMAPP_DASHBOARD_TOKEN: SECRET },
    cwd: mkdtempSync(join(tmpdir(), 'rmapp-inspect-')),
  });
  const service = await startService({
    config,
    extraWorkflows: [workflow],
    inspectUrl: `ws://127.0.0.1:${port}`,
    database: { url: '', dataDir: 'memory://' },
    engine: { pollMs: 50 },
    log: createLogger({ level: 'silent' }),
  });
  try {
    const id = await service.engine.start('test.inspected', { apiToken: SECRET, note: 'hello' });
    expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
    await until(() => received.some((m) => m.includes('"value":"done"')), 20_000, 'the final snapshot at the inspector');
    const types = new Set(received.map((m) => (JSON.parse(m) as { type: string }).type));
    expect([...types]).toEqual(expect.arrayContaining(['@xstate.actor', '@xstate.snapshot', '@xstate.event']));
    const all = received.join('\n');
    expect(all, "the run's own data reached the inspector").toContain('hello');
    expect(all, 'the secret was masked at the inspector').toContain('[REDACTED]');
    expect(all, 'the configured secret reached the inspector').not.toContain(SECRET);
    expect(all, 'a GitHub token reached the inspector').not.toContain(GITHUB_LIKE);
    // The masked fields were there: the step's output, its error and the machine's output.
    expect(all).toContain('value [REDACTED]');
    expect(all).toContain('bad credentials [REDACTED]');
    expect(all).toContain('kept [REDACTED]');
  } finally {
    await service.stop({ graceMs: 500 });
    wss.close();
  }
});
