/**
 * The import-boundary rules of `npm run lint:deps` (`.dependency-cruiser.mjs`, issue #18), shown on a small
 * source tree written for the test: each forbidden import is rejected under the name of the rule it breaks,
 * and the allowed imports of every layer pass. The project's own configuration file is loaded, so weakening
 * or renaming a rule there fails this test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import extractDepcruiseConfig from 'dependency-cruiser/config-utl/extract-depcruise-config';
import { afterEach, beforeAll, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
let config: IConfiguration;
const trees: string[] = [];

beforeAll(async () => {
  config = await extractDepcruiseConfig(join(ROOT, '.dependency-cruiser.mjs'));
});

afterEach(() => {
  for (const dir of trees.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes `files` (path → source) under a fresh directory, cruises its `src/` with the project's rules. */
async function violationsOf(files: Record<string, string>): Promise<string[]> {
  const base = mkdtempSync(join(tmpdir(), 'rmapp-lint-'));
  trees.push(base);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(base, path)), { recursive: true });
    writeFileSync(join(base, path), text);
  }
  const { tsConfig: _tsConfig, ...options } = config.options ?? {};
  const result = await cruise(['src'], { ...options, baseDir: base, validate: true, ruleSet: config });
  const output = result.output as ICruiseResult;
  return output.summary.violations
    .map((v) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' → ')})` : ''}`)
    .sort();
}

/** One module of each layer, each importing only what the layering allows. */
const ALLOWED: Record<string, string> = {
  'src/persistence/store.ts': `export const store = { runs: [] as string[] };\n`,
  'src/persistence/rows.ts': `import { store } from './store.ts';\nexport const rows = () => store.runs;\n`,
  'src/state_machine/engine.ts': `import { rows } from '../persistence/rows.ts';\nexport const engine = { rows };\n`,
  'src/machines/order.ts': `import type { engine } from '../state_machine/engine.ts';\nexport type Order = typeof engine;\n`,
  'src/rmapp/agent.ts': `import { engine } from '../state_machine/engine.ts';\nexport const agent = engine;\n`,
  'src/rmapp/server/http.ts': `import { agent } from '../agent.ts';\nimport { charge } from '../../actors/charge.ts';\nexport const http = [agent, charge];\n`,
  'src/actors/charge.ts':
    `import type { Order } from '../machines/order.ts';\nimport { engine } from '../state_machine/engine.ts';\nimport { agent } from '../rmapp/agent.ts';\n` +
    `export const charge = (o: Order) => [o, engine, agent];\n`,
  'src/index.ts': `export { engine } from './state_machine/engine.ts';\nexport { http } from './rmapp/server/http.ts';\n`,
};

it('passes the imports each layer may make', async () => {
  expect(await violationsOf(ALLOWED)).toEqual([]);
});

it('rejects an import against the layering, naming the rule it breaks', async () => {
  const violations = await violationsOf({
    ...ALLOWED,
    // persistence → state_machine: the store importing the engine.
    'src/persistence/bad.ts': `import { engine } from '../state_machine/engine.ts';\nexport const bad = engine;\n`,
    // machines → rmapp, as github-delivery.ts once took its input schema from rmapp/webhooks/event.ts. Type-only still counts.
    'src/machines/delivery.ts': `import type { agent } from '../rmapp/agent.ts';\nexport type Delivery = typeof agent;\n`,
    // machines doing I/O themselves.
    'src/machines/spawning.ts': `import { spawn } from 'node:child_process';\nexport const run = spawn;\n`,
    // state_machine → machines.
    'src/state_machine/registry.ts': `import type { Order } from '../machines/order.ts';\nexport type Registry = Order[];\n`,
    // actors → rmapp/server, and actors → persistence.
    'src/actors/reply.ts': `import { http } from '../rmapp/server/http.ts';\nimport { store } from '../persistence/store.ts';\nexport const reply = [http, store];\n`,
    // a layer importing the package entry.
    'src/rmapp/cli.ts': `import { engine } from '../index.ts';\nexport const cli = engine;\n`,
  });
  expect(violations).toEqual(
    [
      'actors-import-machines-engine-or-service: src/actors/reply.ts → src/persistence/store.ts',
      'actors-not-server: src/actors/reply.ts → src/rmapp/server/http.ts',
      'machines-do-no-io: src/machines/spawning.ts → child_process',
      'machines-import-only-state-machine: src/machines/delivery.ts → src/rmapp/agent.ts',
      'only-the-entry-imports-the-entry: src/rmapp/cli.ts → src/index.ts',
      'persistence-imports-nothing-above: src/persistence/bad.ts → src/state_machine/engine.ts',
      'state-machine-imports-only-persistence: src/state_machine/registry.ts → src/machines/order.ts',
    ].sort(),
  );
});

it('rejects an import cycle, also one closed by a re-export and a type-only import', async () => {
  // The shape state_machine/testing/ had: index re-exports paths, paths re-exports path-kit, path-kit imports index.
  const violations = await violationsOf({
    'src/state_machine/testing/index.ts': `export { paths } from './paths.ts';\nexport const createKit = () => 1;\n`,
    'src/state_machine/testing/paths.ts': `export { pathKit as paths } from './path-kit.ts';\n`,
    'src/state_machine/testing/path-kit.ts': `import type { createKit } from './index.ts';\nexport const pathKit: typeof createKit = () => 2;\n`,
  });
  // dependency-cruiser reports a cycle once, at the edge where its walk met it.
  expect(violations).toEqual([
    'no-circular: src/state_machine/testing/index.ts → src/state_machine/testing/paths.ts (cycle: ' +
      'src/state_machine/testing/paths.ts → src/state_machine/testing/path-kit.ts → src/state_machine/testing/index.ts)',
  ]);
});
