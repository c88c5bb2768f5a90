/**
 * `OTEL_LOG_LEVEL` turns on OpenTelemetry's own diagnostics: the Node SDK set the API's global `diag`
 * logger to a console logger that printed its messages and arguments unmasked, on stdout and stderr.
 * `startTelemetry` (src/rmapp/otel.ts) now replaces it with a masked logger at the same level. Checked
 * in a real process (the built dist/, as `rmapp worker --otel` loads it): whatever reaches `diag` — a
 * message, a formatted argument, an object, an error's stack, a base64 form — comes out masked.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { maskedDiagLogger, otelLogLevel } from '../src/rmapp/masked-diag-logger.ts';
import { createMasker } from '../src/rmapp/masking.ts';

const SECRET = 'h1-otel-S3cretValue-42xyz';
const ROOT = resolve(import.meta.dirname, '..');

const SCRIPT = `
import { diag } from '@opentelemetry/api';
import { startTelemetry } from './dist/rmapp/otel.js';
import { createMasker } from './dist/rmapp/masking.js';
const secret = process.env.H1_SECRET;
const t = await startTelemetry({ otlp: false, masker: createMasker([secret]) });
diag.error('export failed: password=%s', secret);
diag.warn('config', { url: 'postgres://app:' + secret + '@db/x', nested: { note: 'holds ' + secret }, apiKey: 'k' });
diag.info('info ' + Buffer.from('K=' + secret).toString('base64'));
diag.debug('debug', new Error('boom ' + secret));
diag.verbose('verbose', secret);
console.log('DONE');
await t.shutdown();
`;

function run(level: string | undefined) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, H1_SECRET: SECRET, OTEL_SDK_DISABLED: 'false' };
  if (level !== undefined) env.OTEL_LOG_LEVEL = level;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}\n${r.stderr}` };
}

describe('OpenTelemetry diagnostics under OTEL_LOG_LEVEL', () => {
  it('at ALL, every level reaches stderr, masked: no secret in any form on stdout or stderr', () => {
    const r = run('all');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim(), 'stdout holds only the script’s own line').toBe('DONE');
    for (const line of [
      'otel error: export failed: password=[REDACTED]',
      'otel warn: config',
      'otel info: info',
      'otel debug: debug',
      'otel verbose: verbose',
    ])
      expect(r.stderr, `stderr lacks "${line}"`).toContain(line);
    expect(r.stderr).toContain('boom [REDACTED]');
    for (const form of [SECRET, Buffer.from(SECRET).toString('base64').slice(0, 16), Buffer.from(`K=${SECRET}`).toString('base64')])
      expect(r.all, `a form of the secret was printed: ${form.slice(0, 6)}…`).not.toContain(form);
    // A secret-named key's value is masked as the API masks it.
    expect(r.stderr).toMatch(/apiKey: '\[REDACTED\]'/);
  });

  it('the level is kept: at WARN only error and warn are printed; unset, nothing is', () => {
    const warn = run('WARN');
    expect(warn.status, warn.stderr).toBe(0);
    expect(warn.stderr).toContain('otel error: export failed');
    expect(warn.stderr).toContain('otel warn: config');
    expect(warn.stderr).not.toMatch(/otel (info|debug|verbose):/);
    expect(warn.all).not.toContain(SECRET);
    const unset = run(undefined);
    expect(unset.status, unset.stderr).toBe(0);
    expect(unset.stderr).not.toContain('otel ');
    expect(unset.all).not.toContain(SECRET);
  });

  it('maskedDiagLogger writes one masked line per message; otelLogLevel reads the SDK’s values', () => {
    const lines: string[] = [];
    const log = maskedDiagLogger(createMasker([SECRET]), (l) => lines.push(l));
    log.error(`a ${SECRET}`, { token: 'x', list: [SECRET] }, new Error(`e ${SECRET}`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(SECRET);
    expect(lines[0]).toMatch(/^otel error: a \[REDACTED\] /);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    expect([otelLogLevel(undefined), otelLogLevel(' '), otelLogLevel('debug'), otelLogLevel('nonsense')]).toEqual([null, null, 70, 60]);
  });
});
