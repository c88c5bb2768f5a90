/**
 * The service's HTTP server (API and dashboard) on a free local port, for tests of the API: no webhook,
 * a silent log, answers masked with `secrets`.
 */
import type { Engine } from '../../src/index.ts';
import { createLogger } from '../../src/rmapp/logger.ts';
import { createMasker } from '../../src/rmapp/masking.ts';
import { startServiceServer } from '../../src/rmapp/server/http-server.ts';

/** Starts the server for `engine` behind `token`. */
export function startApiServer(engine: Engine, token: string, secrets: string[] = []): ReturnType<typeof startServiceServer> {
  return startServiceServer({
    masker: createMasker(secrets),
    engine,
    log: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    dashboardToken: token,
    webhook: null,
  });
}
