/**
 * node-postgres, loaded without the HTTP stack it does not use.
 *
 * When `pg` is first evaluated it asks whether it runs in a Cloudflare Worker (`pg/lib/stream.js`,
 * `isCloudflareRuntime`): it reads `navigator.userAgent`, and where there is no `navigator` global —
 * Node 20; Node 21 and later define one — it constructs a `Response`, whose lazy global loads Node's
 * bundled undici with `node:http`, `node:http2` and `node:tls`. No part of rmapp's database path uses
 * them. That cost every process ~40 ms of CPU at start-up (`node -e "require('pg')"`, 10 runs on this
 * machine: 140–150 ms best / 158–159 mean with a `navigator` global, 190 / 197–200 without; bench/README.md,
 * "Recovery, third session"), which a restarted worker's recovery waits for.
 *
 * So `pg` is required here, synchronously, with a `navigator` carrying Node's user agent while it is
 * evaluated, and the global is removed again before any other code can run: nothing else ever sees it.
 * Where `navigator` exists (Node ≥ 21) or `pg` was already loaded by the application, this changes nothing.
 */
import { createRequire } from 'node:module';
import type * as PgModule from 'pg';

function loadPg(): typeof PgModule {
  const require = createRequire(import.meta.url);
  const g = globalThis as { navigator?: unknown };
  if (g.navigator !== undefined) return require('pg') as typeof PgModule;
  g.navigator = { userAgent: `Node.js/${process.versions.node.split('.')[0]}` };
  try {
    return require('pg') as typeof PgModule;
  } finally {
    delete g.navigator;
  }
}

/** The `pg` module (`Pool`, `Client`, …), as `import pg from 'pg'` gives it. */
export const pg: typeof PgModule = loadPg();
