/**
 * CommonJS workflows modules given to `--workflows` (README "CLI"), as an outside tester wrote them.
 *
 * A `.cjs` written as CommonJS usually is, `module.exports = { workflows: [defineWorkflow(…)] }`, was
 * refused — "must export `workflows` (or a default export)" — though it exports exactly that: Node's
 * import of CommonJS finds named exports by scanning the source, which does not see a property whose value
 * is an array, so the list was only on the default export's `workflows` (`exports.workflows = […]` was taken).
 *
 * The README told users that a CommonJS TypeScript module must be a `.cts`. One that loads rmapp — as
 * every workflows module does, for `defineWorkflow` — failed on Node 20 with Node's own `request for
 * './state_machine/engine.js' is not in cache`: a `require()` of the ES module rmapp from a module loaded
 * through tsx's hooks, which Node cannot finish there. The error must say what works instead: the same
 * module written with `import`/`export` (`.ts` or `.mts`).
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

/** A CommonJS module `workflows.<ext>` defining workflow `name`, exported by `exporting(list)`; then `rmapp workflows list --json` on it. */
async function listModule(ext: 'cjs' | 'cts', name: string, exporting: (list: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), `pk-${ext}-`));
  dirs.push(dir);
  const file = join(dir, `workflows.${ext}`);
  const from = (m: string) => `require(require.resolve(${JSON.stringify(m)}, { paths: [${JSON.stringify(ROOT)}] }))`;
  writeFileSync(
    file,
    `const { defineWorkflow } = require(${JSON.stringify(join(ROOT, 'dist/index.js'))});
const { setup } = ${from('xstate')};
const { z } = ${from('zod')};
const machine = setup({}).createMachine({ id: 'c', initial: 'a', states: { a: { type: 'final' } } });
${exporting(`[defineWorkflow({ name: ${JSON.stringify(name)}, machine, input: z.object({}) })]`)};
`,
  );
  return { file, listed: await runRmapp(['--workflows', file, 'workflows', 'list', '--json'], { RMAPP_WORKFLOWS: '' }) };
}

describe('a CommonJS workflows module', () => {
  it('exporting `module.exports = { workflows: [...] }` is loaded', async () => {
    const { file, listed } = await listModule('cjs', 'cjs.one', (list) => `module.exports = { workflows: ${list} }`);
    expect(listed.code, `rmapp workflows list refused ${file}: ${listed.stderr}`).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((w) => w.name)).toEqual(['cjs.one']);
  }, 60_000);

  it('as a .cts that requires rmapp is loaded, or refused naming the ES-module form that loads', async () => {
    const { file, listed } = await listModule('cts', 'cts.one', (list) => `exports.workflows = ${list}`);
    if (listed.code === 0) {
      expect((JSON.parse(listed.stdout) as { name: string }[]).map((w) => w.name)).toEqual(['cts.one']);
      return;
    }
    expect(listed.stderr, `the refusal of ${file} does not say what loads instead`).toMatch(/import.*export.*\.mts/s);
  }, 60_000);
});
