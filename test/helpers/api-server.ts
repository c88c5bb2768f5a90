/**
 * The service's HTTP server (API and dashboard) on a free local port, for tests of the API: no webhook,
 * a silent log unless given one, answers masked with `secrets`.
 */
import type { Engine } from '../../src/index.ts';
import { createLogger, type Logger } from '../../src/rmapp/logger.ts';
import { createMasker } from '../../src/rmapp/masking.ts';
import { startServiceServer } from '../../src/rmapp/server/http-server.ts';

/** Starts the server for `engine` behind `token` (none: open), logging to `log` (default: nowhere). */
export function startApiServer(
  engine: Engine,
  token: string | undefined,
  secrets: string[] = [],
  log: Logger = createLogger({ level: 'silent' }),
): ReturnType<typeof startServiceServer> {
  return startServiceServer({
    masker: createMasker(secrets),
    engine,
    log,
    host: '127.0.0.1',
    port: 0,
    dashboardToken: token,
    webhook: null,
  });
}
