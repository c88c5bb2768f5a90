import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

/**
 * Where a browser test saves a screenshot: `docs/<name>` (the README shows them) only when
 * `RMAPP_UPDATE_SCREENSHOTS=1`, else a temporary folder, so that running the tests leaves the
 * working tree as it was.
 */
export function screenshotPath(name: string): string {
  if (process.env.RMAPP_UPDATE_SCREENSHOTS === '1') return join(ROOT, 'docs', name);
  const dir = join(tmpdir(), 'rmapp-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
