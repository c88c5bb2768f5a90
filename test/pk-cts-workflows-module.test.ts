/**
 * README "CLI" told users that a CommonJS TypeScript workflows module must be a `.cts`. One that loads
 * rmapp — as every workflows module does, for `defineWorkflow` — failed on Node 20 with Node's own
 * `request for './state_machine/engine.js' is not in cache`: a `require()` of the ES module rmapp from a
 * module loaded through tsx's hooks, which Node cannot finish there (an outside tester). The error must
 * say what works instead: the same module written with `import`/`export` (`.ts` or `.mts`).
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

describe('a .cts workflows module that requires rmapp', () => {
  it('is loaded, or refused naming the ES-module form that loads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-cts-'));
    dirs.push(dir);
    const file = join(dir, 'workflows.cts');
    const from = (name: string) => `require(require.resolve(${JSON.stringify(name)}, { paths: [${JSON.stringify(ROOT)}] }))`;
    writeFileSync(
      file,
      `const { defineWorkflow } = require(${JSON.stringify(join(ROOT, 'dist/index.js'))});
const { setup } = ${from('xstate')};
const { z } = ${from('zod')};
const machine = setup({}).createMachine({ id: 'c', initial: 'a', states: { a: { type: 'final' } } });
exports.workflows = [defineWorkflow({ name: 'cts.one', machine, input: z.object({}) })];
`,
    );
    const listed = await runRmapp(['--workflows', file, 'workflows', 'list', '--json'], { RMAPP_WORKFLOWS: '' });
    if (listed.code === 0) {
      expect((JSON.parse(listed.stdout) as { name: string }[]).map((w) => w.name)).toEqual(['cts.one']);
      return;
    }
    expect(listed.stderr, `the refusal of ${file} does not say what loads instead`).toMatch(/import.*export.*\.mts/s);
  }, 60_000);
});
