/**
 * The service's HTTP server as the tests of its HTTP side start it — an in-memory store, no webhook, a
 * silent log, a free port — and raw exchanges with it: bytes no HTTP client library would send.
 */
import { connect } from 'node:net';
import { createEngine, type AnyWorkflowDefinition, type Engine } from '../../src/index.ts';
import { createLogger } from '../../src/rmapp/logger.ts';
import { startServiceServer, type ServiceServerOptions } from '../../src/rmapp/server/http-server.ts';

/** A running server and its engine; `close` stops both. */
export interface HttpService {
  engine: Engine;
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts the engine (its store opened first: PGlite's start holds the event loop for seconds, which a
 * test's exchange must not wait through), its worker when `worker` is set, and the server with `server`'s options.
 */
export async function startHttpService(
  options: {
    workflows?: AnyWorkflowDefinition[];
    worker?: boolean;
    server?: Partial<Omit<ServiceServerOptions, 'engine' | 'log'>>;
  } = {},
): Promise<HttpService> {
  const engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: options.workflows ?? [], pollMs: 50 });
  await engine.db();
  if (options.worker) await engine.startWorker();
  const server = await startServiceServer({
    engine,
    log: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    webhook: null,
    ...options.server,
  });
  return {
    engine,
    url: server.url,
    port: Number(new URL(server.url).port),
    close: async () => {
      await server.close();
      await engine.stop({ graceMs: 0 });
    },
  };
}

/** Sends `request` on a connection of its own and reads the answer until the server closes it (or `waitMs`). */
export function rawExchange(port: number, request: string, waitMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let got = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('close', done);
    socket.on('error', () => {});
  });
}
