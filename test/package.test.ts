/**
 * What a new user gets from npm (issue 17): the packed tarball, installed into an empty project with
 * its peers, (1) runs the README's engine example as plain JavaScript on embedded PGlite, (2) type-checks
 * and emits it as a strict NodeNext TypeScript app with `skipLibCheck: false`, where the input, the
 * events and the output are typed, and (3) gives a working `rmapp` command. `npm test` builds dist/
 * first (`pretest`), so this tests what is shipped.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'rmapp-pack-'));
const app = join(dir, 'app');
const version = (name: string) =>
  (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
const ownVersion = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
let files: string[] = [];

/** Runs a command in the app; a failure carries its output. */
async function sh(file: string, args: string[], env: Record<string, string> = {}) {
  try {
    return await run(file, args, { cwd: app, env: { ...process.env, DATABASE_URL: '', ...env }, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** The README's "Using the engine" block, as written. */
function readmeEngineExample(): string {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = text.indexOf('```ts', text.indexOf('## Using the engine'));
  return text.slice(start + '```ts'.length, text.indexOf('\n```', start + 1)).trim();
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test runs it first).');
  // dist/ is already built (pretest); packing must not build it again.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  files = (info?.files ?? []).map((f) => f.path);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // The peers at the versions the repository tests with, so a warm npm cache serves them.
  await sh('npm', [
    'install',
    join(dir, info?.filename ?? 'missing.tgz'),
    `xstate@${version('xstate')}`,
    `zod@${version('zod')}`,
    'typescript@5.9',
    `@types/node@${version('@types/node')}`,
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    '--no-package-lock',
    '--ignore-scripts',
  ]);
}, 240_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

it('ships compiled code, declarations, the CLI and the migrations; no sources, tests, bench or CI', () => {
  const shipped = (prefix: string) => files.filter((f) => f.startsWith(prefix));
  expect(shipped('src/'), 'TypeScript sources in the tarball').toEqual([]);
  expect(shipped('test/'), 'tests in the tarball').toEqual([]);
  expect(shipped('bench/'), 'bench in the tarball').toEqual([]);
  expect(shipped('.ci/'), 'CI files in the tarball').toEqual([]);
  for (const f of [
    'dist/index.js',
    'dist/index.d.ts',
    'dist/state_machine/testing/index.d.ts',
    'bin/rmapp.mjs',
    'dist/rmapp/sandbox/net-forwarder.mjs',
    'dist/rmapp/server/dashboard/index.html',
    'migrations/meta/_journal.json',
    // package.json says MIT: the license text travels with it.
    'LICENSE',
  ]) {
    expect(files, `${f} missing from the tarball`).toContain(f);
  }
});

it('runs the README engine example as plain JavaScript and as a strict NodeNext TypeScript app', async () => {
  const example = readmeEngineExample();
  // (1) Plain JavaScript: the example with its type annotations removed, run by node.
  writeFileSync(
    join(app, 'app.mjs'),
    ts.transpileModule(example, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText,
  );
  // (2) The example as written, plus lines that must not type-check: input, events and output are typed.
  writeFileSync(
    join(app, 'app.ts'),
    `${example}
export async function typed(): Promise<string | undefined> {
  // @ts-expect-error the input schema wants a number
  await engine.start(order, { amountCents: 'twelve' });
  // @ts-expect-error the machine takes only 'approve'
  await engine.send(id, { type: 'reject' });
  const done = await engine.waitFor(id);
  return done.output?.receipt;
}
`,
  );
  // `rmapp/testing` resolves and type-checks the same way.
  writeFileSync(
    join(app, 'kit.ts'),
    "import { createTestKit, type TestKit } from 'rmapp/testing';\nexport const kit = (workflows: Parameters<typeof createTestKit>[0]['workflows']): Promise<TestKit> => createTestKit({ workflows });\n",
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: false,
        types: ['node'],
        outDir: 'out',
      },
      files: ['app.ts', 'kit.ts'],
    }),
  );
  // Both at once (two cores): the app on PGlite, the compiler on the declarations.
  const [plain] = await Promise.all([sh('node', ['app.mjs']), sh('npx', ['--no-install', 'tsc', '-p', '.'])]);
  expect(plain.stdout).toMatch(/succeeded \{ receipt: 'ch_1 for 1200' \}/);
  for (const f of ['app.js', 'kit.js']) expect(existsSync(join(app, 'out', f)), `tsc emitted out/${f}`).toBe(true);
}, 180_000);

it('gives an rmapp command: --version and workflows list', async () => {
  const v = await sh('npx', ['--no-install', 'rmapp', '--version']);
  expect(v.stdout.trim()).toBe(ownVersion);
  const list = await sh('npx', ['--no-install', 'rmapp', 'workflows', 'list', '--json']);
  const workflows = JSON.parse(list.stdout) as { name: string; version: string; input: { properties?: Record<string, unknown> } }[];
  expect(workflows.map((w) => w.name)).toEqual(['example.order']);
  expect(Object.keys(workflows[0]?.input.properties ?? {})).toContain('orderId');
  // tsx is not installed here: a TypeScript workflows module gets the fix, not a loader error.
  writeFileSync(join(app, 'workflows.ts'), 'export const workflows = [];\n');
  const missingTsx = await sh('npx', ['--no-install', 'rmapp', '--workflows', 'workflows.ts', 'workflows', 'list']).catch(
    (err: Error) => err.message,
  );
  expect(missingTsx).toMatch(
    /workflows\.ts is TypeScript, and loading it needs tsx: install it in this project \(npm install --save-dev tsx\) or use the compiled \.js module/,
  );
}, 60_000);
