/** `rmapp serve --inspect <ws-url>`: every run's actors stream to a Stately Inspector WebSocket endpoint, secrets masked. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { defineWorkflow, step } from '../src/index.ts';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { maskSecrets, startService } from '../src/rmapp/service.ts';
import { until } from './helpers/processes.ts';

const SECRET = 'sekret-token-value-123';

it('streams actors, events and snapshots to the inspector with secret fields masked', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const received: string[] = [];
  wss.on('connection', (socket) => socket.on('message', (data) => received.push(String(data))));
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;

  const machine = setup({ actors: { call: step(async () => ({ ok: true })) } }).createMachine({
    id: 'inspected',
    context: ({ input }: { input: { apiToken: string; note: string } }) => ({ apiToken: input.apiToken, note: input.note }),
    initial: 'calling',
    states: { calling: { invoke: { src: 'call', onDone: 'done' } }, done: { type: 'final' } },
  });
  const workflow = defineWorkflow({ name: 'test.inspected', machine, input: z.object({ apiToken: z.string(), note: z.string() }) });
  const config = await loadConfig({ env: { PORT: '0' }, cwd: mkdtempSync(join(tmpdir(), 'rmapp-inspect-')) });
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
    await until(() => received.some((m) => m.includes('"done"')), 20_000, 'the final snapshot at the inspector');
    const types = new Set(received.map((m) => (JSON.parse(m) as { type: string }).type));
    expect([...types]).toEqual(expect.arrayContaining(['@xstate.actor', '@xstate.snapshot', '@xstate.event']));
    expect(received.some((m) => m.includes('hello'))).toBe(true);
    expect(received.some((m) => m.includes('[REDACTED]'))).toBe(true);
    expect(received.join('\n')).not.toContain(SECRET);
  } finally {
    await service.stop({ graceMs: 500 });
    wss.close();
  }
});

it('maskSecrets masks secret-looking keys and known secret values at any depth', () => {
  expect(maskSecrets({ a: { githubToken: 'x', list: [{ password: 'p' }], text: `uses ${SECRET}` } }, [SECRET])).toEqual({
    a: { githubToken: '[REDACTED]', list: [{ password: '[REDACTED]' }], text: 'uses [REDACTED]' },
  });
});
