/**
 * `require('rmapp')` from CommonJS (README "Installing it in your project"): rmapp is ESM only, and its
 * exports map had only an `import` condition, so `require` failed with `ERR_PACKAGE_PATH_NOT_EXPORTED: No
 * "exports" main defined` and a stack. With a `default` condition on the same files, Node ≥ 20.19 (and
 * ≥ 22.12) loads them through require(esm), and an older Node 20 says `ERR_REQUIRE_ESM` in its own words.
 * The package is this checkout (dist/ built), linked into an empty project: no network.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.ts';

const app = mkdtempSync(join(tmpdir(), 'rmapp-require-'));
afterAll(() => rmSync(app, { recursive: true, force: true }));

it('require() of rmapp and rmapp/testing from a .cjs file loads them, or fails with ERR_REQUIRE_ESM where Node cannot', async () => {
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(ROOT, join(app, 'node_modules', 'rmapp'), 'dir');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'cjs-app', private: true, type: 'commonjs' }));
  writeFileSync(
    join(app, 'app.cjs'),
    `const out = {};
for (const name of ['rmapp', 'rmapp/testing']) {
  try {
    out[name] = Object.keys(require(name)).sort();
  } catch (err) {
    out[name] = { code: err.code, message: err.message.split('\\n')[0] };
  }
}
console.log(JSON.stringify(out));
`,
  );
  const { stdout } = await promisify(execFile)(process.execPath, ['app.cjs'], { cwd: app });
  const out = JSON.parse(stdout) as Record<string, string[] | { code: string; message: string }>;
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const requiresEsm = major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19);
  for (const [name, result] of Object.entries(out)) {
    const what = `require('${name}') on Node ${process.versions.node} gave ${JSON.stringify(result)}`;
    if (!requiresEsm) expect(result, what).toMatchObject({ code: 'ERR_REQUIRE_ESM' });
    else expect(result, what).toContain(name === 'rmapp' ? 'createEngine' : 'createTestKit');
  }
});
