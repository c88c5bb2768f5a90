/** `rmapp serve --inspect <ws-url>`: every run's actors stream to a Stately Inspector WebSocket endpoint, secrets masked. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { assign, createActor, setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { defineWorkflow, step, WorkflowError } from '../src/index.ts';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startInspector } from '../src/rmapp/inspector.ts';
import { createMasker } from '../src/rmapp/masking.ts';
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

/** A log that keeps its lines (the inspector says when it loses, drops and finds the endpoint). */
function keptLog() {
  const lines: string[] = [];
  const log = {
    info: (_o: unknown, m?: string) => void lines.push(`info ${m}`),
    warn: (_o: unknown, m?: string) => void lines.push(`warn ${m}`),
  };
  return { lines, log };
}

it("masks secret-named fields of a machine's definition, which travels as JSON text", async () => {
  // An adversarial pass: the snapshot's `apiKey` was masked, the definition's default went out whole.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const received: string[] = [];
  wss.on('connection', (socket) => socket.on('message', (data) => received.push(String(data))));
  await new Promise((r) => wss.once('listening', r));
  const { log } = keptLog();
  const connection = startInspector(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`, createMasker([]), log);
  try {
    const machine = setup({}).createMachine({
      id: 'defaults',
      context: { apiKey: 'static-apikey-literal-777', password: 'static-ctx-password', note: 'visible' },
      initial: 'a',
      states: { a: {} },
    });
    const actor = createActor(machine, { inspect: connection.inspect }).start();
    await until(() => received.some((m) => m.includes('"definition"')), 10_000, 'the actor event');
    const all = received.join('\n');
    expect(all, 'the definition arrived').toContain('visible');
    for (const secret of ['static-apikey-literal-777', 'static-ctx-password']) expect(all, secret).not.toContain(secret);
    actor.stop();
  } finally {
    connection.stop();
    wss.close();
  }
});

it('connects again when the endpoint closes the connection, and drops what an endpoint that does not read would pile up', async () => {
  // An adversarial pass: after the endpoint restarted nothing reached it again (the library connected
  // again only after an error), and an endpoint that stopped reading grew the service by 92 MB.
  const first = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => first.once('listening', r));
  const port = (first.address() as { port: number }).port;
  const { lines, log } = keptLog();
  const connection = startInspector(`ws://127.0.0.1:${port}`, createMasker([]), log);
  const machine = setup({}).createMachine({ id: 'pinged', initial: 'a', states: { a: { on: { ping: 'a' } } } });
  try {
    await until(() => first.clients.size === 1, 10_000, 'the first connection');
    for (const c of first.clients) c.terminate();
    await new Promise((r) => first.close(r));
    await until(() => lines.some((l) => /closed the connection; connecting again/.test(l)), 10_000, 'the loss said');
    // The endpoint comes back on the same port: the next events reach it.
    const second = new WebSocketServer({ port, host: '127.0.0.1' });
    const received: string[] = [];
    let socket: import('ws').WebSocket | undefined;
    second.on('connection', (s) => {
      socket = s;
      s.on('message', (data) => received.push(String(data)));
    });
    await until(() => lines.includes('info inspector: connected'), 20_000, 'connected again');
    const actor = createActor(machine, { inspect: connection.inspect }).start();
    await until(() => received.some((m) => m.includes('"@xstate.actor"')), 10_000, 'events after the reconnection');
    // The endpoint stops reading: what is unsent stays bounded, the rest is dropped and said so.
    (socket as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const big = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 400; i++) actor.send({ type: 'ping', big } as never);
    await until(() => lines.some((l) => /not reading .* dropping events/.test(l)), 20_000, 'the drop said');
    actor.stop();
    second.close();
  } finally {
    connection.stop();
  }
}, 60_000);

it('an event it cannot write is left out and said; an endpoint that closes at once or never answers is tried again with a growing wait', async () => {
  // An adversarial pass: a context holding a BigInt ended `rmapp serve` (the library wrote it in a
  // timer of its own); an endpoint closing every connection at once was reconnected every second for
  // ever; one that never finished the handshake held the inspector silent for ever.
  const closing = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  let connections = 0;
  closing.on('connection', (s) => {
    connections++;
    s.close();
  });
  await new Promise((r) => closing.once('listening', r));
  const { lines, log } = keptLog();
  const connection = startInspector(`ws://127.0.0.1:${(closing.address() as { port: number }).port}`, createMasker([]), log);
  const machine = setup({}).createMachine({ id: 'big', context: { n: 10n as unknown as number }, initial: 'a', states: { a: {} } });
  const actor = createActor(machine, { inspect: connection.inspect }).start();
  await until(() => lines.some((l) => /could not be written .*BigInt/.test(l)), 10_000, 'the unwritable event said');
  await new Promise((r) => setTimeout(r, 6_500));
  // Waits of 1, 2 and 4 s: at most 4 connections in 6.5 s (every second, 7).
  expect(connections, 'connections to an endpoint that closes each at once').toBeLessThanOrEqual(4);
  expect(
    lines.filter((l) => /closed the connection/.test(l)),
    'the loss said once',
  ).toHaveLength(1);
  actor.stop();
  connection.stop();
  closing.close();

  // A TCP server that never answers the handshake.
  const { createServer } = await import('node:net');
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const quiet = keptLog();
  const stuck = startInspector(`ws://127.0.0.1:${(silent.address() as { port: number }).port}`, createMasker([]), quiet.log);
  try {
    await until(() => quiet.lines.some((l) => /Opening handshake has timed out/.test(l)), 20_000, 'the handshake timeout said');
  } finally {
    stuck.stop();
    silent.close();
  }
}, 60_000);
