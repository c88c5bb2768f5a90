/**
 * Every code block of the README that is a complete program runs, as written (issue 15): the block is
 * written into the package (so `rmapp` resolves to this package by its own name) and run by Node with
 * tsx against a fresh Postgres database.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { ROOT } from './helpers/processes.ts';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb.drop();
});

/** The ```ts blocks of the README that import from 'rmapp' and need nothing from outside. */
function completePrograms(): { heading: string; code: string }[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks: { heading: string; code: string }[] = [];
  let heading = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (line.trim() !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    const code = lines.slice(i + 1, end).join('\n');
    // A complete program imports what it uses; a fragment (e.g. the testing kit's) uses names from elsewhere.
    if (/from 'rmapp'/.test(code) && !/\bexpect\(/.test(code)) blocks.push({ heading, code });
    i = end;
  }
  return blocks;
}

/** Runs `code` as a TypeScript program inside the package (so `rmapp` resolves to it) against the test database. */
async function runProgram(code: string, name: string): Promise<{ status: number | null; out: string }> {
  const file = join(ROOT, `.readme-${name}-${process.pid}.ts`);
  writeFileSync(file, code);
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: testDb.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { status, out };
  } finally {
    rmSync(file, { force: true });
  }
}

it('finds the engine example among the complete programs', () => {
  expect(completePrograms().map((b) => b.heading)).toContain('Using the engine');
});

for (const { heading, code } of completePrograms()) {
  it(`README "${heading}" runs as written`, async () => {
    const { status, out } = await runProgram(code, 'example');
    expect(status, out).toBe(0);
    if (heading === 'Using the engine') expect(out).toMatch(/succeeded \{ receipt: 'ch_1 for 1200' \}/);
  });
}

it("README's testing kit example runs against the README's own workflow", async () => {
  // An adversarial pass pasted it after the engine example: it started `order` with `{ amount: 12 }`,
  // which the example's `order` refuses (it takes `amountCents`).
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = (heading: string) => {
    const at = text.indexOf(`\n## ${heading}`);
    const start = text.indexOf('```ts\n', at) + '```ts\n'.length;
    return text.slice(start, text.indexOf('\n```', start));
  };
  const fragment = block('Testing your workflows: `rmapp/testing`');
  const imports = fragment.split('\n').filter((l) => l.startsWith('import '));
  const body = fragment.split('\n').filter((l) => !l.startsWith('import '));
  const program = [
    "import assert from 'node:assert/strict';",
    ...imports,
    block('Using the engine'),
    'const expect = (actual: unknown) => ({ toBe: (x: unknown) => assert.equal(actual, x), toEqual: (x: unknown) => assert.deepEqual(actual, x) });',
    '{',
    ...body,
    '}',
    "console.log('testing example done');",
  ].join('\n');
  const { status, out } = await runProgram(program, 'testing');
  expect(status, out).toBe(0);
  expect(out).toContain('testing example done');
});
