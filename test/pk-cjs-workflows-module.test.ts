/**
 * `--workflows` takes a `.cjs` module (README "CLI"). Written as CommonJS is usually written,
 * `module.exports = { workflows: [defineWorkflow(…)] }`, it was refused — "must export `workflows` (or a
 * default export)" — though it exports exactly that: Node's import of CommonJS finds named exports by
 * scanning the source, which does not see a property whose value is an array, so the list was only on the
 * default export's `workflows` (an outside tester; `exports.workflows = […]` was taken).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, runRmapp } from './helpers/processes.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('a CommonJS workflows module', () => {
  it('exporting `module.exports = { workflows: [...] }` is loaded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-cjs-'));
    dirs.push(dir);
    const file = join(dir, 'workflows.cjs');
    const from = (name: string) => `require(require.resolve(${JSON.stringify(name)}, { paths: [${JSON.stringify(ROOT)}] }))`;
    writeFileSync(
      file,
      `const { defineWorkflow } = require(${JSON.stringify(join(ROOT, 'dist/index.js'))});
const { setup } = ${from('xstate')};
const { z } = ${from('zod')};
const machine = setup({}).createMachine({ id: 'c', initial: 'a', states: { a: { type: 'final' } } });
module.exports = { workflows: [defineWorkflow({ name: 'cjs.one', machine, input: z.object({}) })] };
`,
    );
    const listed = await runRmapp(['--workflows', file, 'workflows', 'list', '--json'], { RMAPP_WORKFLOWS: '' });
    expect(listed.code, `rmapp workflows list refused ${file}: ${listed.stderr}`).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((w) => w.name)).toEqual(['cjs.one']);
  }, 60_000);
});
