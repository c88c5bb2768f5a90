/**
 * The files a user names to the CLI (`--config`, `--workflows`): a file of the wrong kind, a directory or
 * a module that does not parse is named with what to pass instead, in one line, never in Node's loader's
 * words. No database is opened: each command fails before it would.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runRmapp } from './helpers/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'rmapp-user-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `rmapp <args>` expecting a one-line user error that matches `pattern`. */
async function refused(args: string[], pattern: RegExp): Promise<void> {
  const r = await runRmapp(args, { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/never-opened' });
  const what = `rmapp ${args.join(' ')}: ${r.stderr}`;
  expect(r.code, what).toBe(1);
  expect(r.stderr, what).toMatch(pattern);
  expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
  expect(r.stderr, what).not.toMatch(/Unknown file extension|Directory import|dist\/rmapp/);
}

it('--config given a .yml file or a directory names the formats it reads', async () => {
  writeFileSync(join(dir, 'rmapp.yml'), 'server:\n  port: 3000\n');
  mkdirSync(join(dir, 'conf'));
  const formats = /a \.json file, or a \.js, \.mjs, \.cjs, \.ts, \.mts or \.cts module that exports the configuration/;
  await refused(
    ['serve', '--config', join(dir, 'rmapp.yml')],
    new RegExp(`config file ${join(dir, 'rmapp.yml')} is a \\.yml file: pass --config .*${formats.source}`),
  );
  await refused(
    ['serve', '--config', join(dir, 'conf')],
    new RegExp(`config file ${join(dir, 'conf')} is a directory, not a file: .*${formats.source}`),
  );
});

it('--workflows given a directory or a file of another kind names the modules it loads', async () => {
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'flows.json'), '[]');
  const modules =
    /pass --workflows \(or set RMAPP_WORKFLOWS to\) a \.js, \.mjs, \.cjs, \.ts, \.mts or \.cts module that exports `workflows`/;
  await refused(
    ['--workflows', join(dir, 'flows'), 'workflows', 'list'],
    new RegExp(`${join(dir, 'flows')} is a directory, not a file: ${modules.source}`),
  );
  await refused(
    ['--workflows', join(dir, 'flows.json'), 'workflows', 'list'],
    new RegExp(`${join(dir, 'flows.json')} is a \\.json file: ${modules.source}`),
  );
});

it('a --workflows module that does not parse is named with the line and column of the error', async () => {
  // An ES module (Node 20 gives its SyntaxError no location) and a CommonJS one (it does, in its stack).
  writeFileSync(join(dir, 'broken.mjs'), 'const a = 1;\nexport const workflows = [\n    error here\n];\n');
  writeFileSync(join(dir, 'broken.cjs'), 'module.exports = {\n  workflows: [ a b ],\n};\n');
  await refused(
    ['--workflows', join(dir, 'broken.mjs'), 'workflows', 'list'],
    new RegExp(`failed: SyntaxError at ${join(dir, 'broken.mjs')}:3:11: Unexpected identifier 'here'`),
  );
  await refused(
    ['--workflows', join(dir, 'broken.cjs'), 'workflows', 'list'],
    new RegExp(`failed: SyntaxError at ${join(dir, 'broken.cjs')}:2:18: Unexpected identifier 'b'`),
  );
});

it('a TypeScript module outside an ES-module package loads (Node takes its .ts for CommonJS)', async () => {
  // A package.json without "type": "module": tsx's ESM hooks alone handed the file to Node's CommonJS
  // loader, which read `const n: number` as JavaScript ("Missing initializer in const declaration").
  const project = join(dir, 'commonjs-project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), '{}\n');
  writeFileSync(join(project, 'wf.ts'), 'const n: number = 1;\nexport const workflows = [];\n');
  writeFileSync(join(project, 'cfg.ts'), 'const concurrency: number = -1;\nexport default { concurrency };\n');
  const listed = await runRmapp(['--workflows', join(project, 'wf.ts'), 'workflows', 'list']);
  expect(listed.code, listed.stderr).toBe(0);
  expect(listed.stdout).toMatch(/No workflows/);
  // The configuration loads, so its value (-1, refused) is named in the file.
  const served = await runRmapp(['serve', '--config', join(project, 'cfg.ts')]);
  expect(served.code, served.stderr).toBe(1);
  expect(served.stderr).toContain(`concurrency (in ${join(project, 'cfg.ts')})`);
  // A CommonJS .ts with a line starting `export` inside a string or a comment stays CommonJS (it loaded
  // before the hook, which took it for an ES module: "require is not defined in ES module scope").
  writeFileSync(
    join(project, 'cjs.ts'),
    [
      "const { readFileSync } = require('node:fs');",
      'const text = `',
      'export const notReally = 1;',
      '`;',
      '/*',
      'export is how ESM does it',
      '*/',
      'exports.workflows = [];',
      'exports.text = text + String(readFileSync);',
      '',
    ].join('\n'),
  );
  const cjs = await runRmapp(['--workflows', join(project, 'cjs.ts'), 'workflows', 'list']);
  expect(cjs.code, cjs.stderr).toBe(0);
  // An ES module written `export{…}` without a space is one too.
  writeFileSync(join(project, 'tight.ts'), 'const workflows: unknown[] = [];\nexport{workflows};\n');
  const tight = await runRmapp(['--workflows', join(project, 'tight.ts'), 'workflows', 'list']);
  expect(tight.code, tight.stderr).toBe(0);
});

it('a --config module or JSON file that does not parse, and a module a --workflows module imports, are named with line and column', async () => {
  writeFileSync(join(dir, 'bad-config.mjs'), 'export default {\n  concurrency: 3;\n};\n');
  writeFileSync(join(dir, 'bad-config.json'), '{\n  "concurrency": 3,\n  "x": \n}\n');
  writeFileSync(join(dir, 'imports-broken.mjs'), "import { w } from './bad-config.mjs';\nexport const workflows = [w];\n");
  await refused(
    ['serve', '--config', join(dir, 'bad-config.mjs')],
    new RegExp(
      `config file ${join(dir, 'bad-config.mjs')} failed: SyntaxError at ${join(dir, 'bad-config.mjs')}:2:17: Unexpected token ';'`,
    ),
  );
  const fromEnv = await runRmapp(['worker'], { RMAPP_CONFIG: join(dir, 'bad-config.mjs') });
  expect(fromEnv.stderr).toContain(`SyntaxError at ${join(dir, 'bad-config.mjs')}:2:17`);
  await refused(
    ['--workflows', join(dir, 'imports-broken.mjs'), 'workflows', 'list'],
    new RegExp(`failed: SyntaxError at ${join(dir, 'bad-config.mjs')}:2:17: Unexpected token ';'`),
  );
  const json = await runRmapp(['serve', '--config', join(dir, 'bad-config.json')]);
  expect(json.code, json.stderr).toBe(1);
  expect(json.stderr).toContain(`${join(dir, 'bad-config.json')}:4:1: Unexpected token '}' — the file is not valid JSON`);
  expect(json.stderr).not.toMatch(/position|is not valid JSON\)/);
  // A byte order mark (an editor's) is left out, not reported as an invisible unexpected token.
  writeFileSync(join(dir, 'bom-config.json'), '\uFEFF{"concurrency": -1}\n');
  const bom = await runRmapp(['serve', '--config', join(dir, 'bom-config.json')]);
  expect(bom.stderr).toContain(`concurrency (in ${join(dir, 'bom-config.json')})`);
});
