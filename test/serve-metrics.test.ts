/** `rmapp serve --metrics`: Prometheus metrics on the service's own port, behind the dashboard token. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadConfig } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { startService } from '../src/rmapp/service.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

it('serves /metrics with the engine metrics of finished runs', async () => {
  const token = 'metrics-token-0123456789';
  const config = await loadConfig({ env: { PORT: '0', RMAPP_DASHBOARD_TOKEN: token }, cwd: mkdtempSync(join(tmpdir(), 'rmapp-metrics-')) });
  const service = await startService({
    config,
    metrics: true,
    extraWorkflows: [sequenceWorkflow(2)],
    database: { url: '', dataDir: 'memory://' },
    engine: { pollMs: 50 },
    log: createLogger({ level: 'silent' }),
  });
  try {
    const id = await service.engine.start('test.sequence', {});
    expect((await service.engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
    expect((await fetch(`${service.url}/metrics`)).status).toBe(401);
    const res = await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/rmapp_runs_finished_total\{[^}]*workflow_name="test.sequence"[^}]*workflow_status="succeeded"[^}]*\} 1/);
    expect(text).toMatch(/rmapp_steps_total\{/);
    // The process's command line (which may carry --database-url with a password) is not a resource attribute.
    expect(text).not.toMatch(/process_command|command_args/);
  } finally {
    await service.stop({ graceMs: 500 });
  }
});
