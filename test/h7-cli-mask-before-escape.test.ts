/**
 * The CLI masks what it prints before making it terminal-safe (src/rmapp/cli/main.ts `maskedSafe`). The
 * masker finds a secret split by control characters by its letters and digits; `terminalSafe` writes each
 * control as `\xNN`, whose letters and digits land between the secret's. Escaped first (85f1938), a
 * secret typed into a flag with a BEL inside was printed in the clear by the usage error quoting it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'bin', 'rmapp.mjs');
const SECRET = 'Q7mZp3Rt9XwLk2Vb8NcY4HdJ';
const cwd = mkdtempSync(join(tmpdir(), 'h7-cli-mask-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** The secret's letters and digits as they appear in the output (controls shown as \xNN taken out). */
const lettersOf = (text: string) => text.replace(/\\x[0-9a-f]{2}/g, '').replace(/[^A-Za-z0-9]/g, '');

describe('CLI usage errors quoting a secret split by control characters', () => {
  for (const [what, args] of [
    ['an unknown option', ['runs', 'list', `--bogus=Q7mZp3Rt\x079XwLk2Vb\x078NcY4HdJ`]],
    ['an invalid choice', ['runs', 'list', '--status', `Q7mZp3Rt\x1b[31m9XwLk2Vb\x1b[0m8NcY4HdJ`]],
  ] as const) {
    it(`masks it in ${what}`, () => {
      const out = spawnSync(process.execPath, [BIN, ...args], {
        cwd,
        encoding: 'utf8',
        env: { ...process.env, GITHUB_WEBHOOK_SECRET: SECRET },
      });
      const printed = `${out.stdout}${out.stderr}`;
      expect(out.status, printed).not.toBe(0);
      expect(printed, `${what}: the usage error was not printed`).toMatch(/error/);
      // No control character reaches the terminal, and the secret is not there, even with its controls read past.
      // eslint-disable-next-line no-control-regex -- a raw control in the output is what is checked
      expect(printed, `${what}: a raw control reached the terminal`).not.toMatch(/[\x07\x1b]/);
      expect(lettersOf(printed), `${what} printed the secret: ${JSON.stringify(printed)}`).not.toContain(SECRET);
      expect(lettersOf(printed), `${what}: the secret's head was printed: ${JSON.stringify(printed)}`).not.toContain('Q7mZp3Rt');
    });
  }
});
