/**
 * `rmapp start`'s input and `rmapp runs send`'s event from standard input (`-`) or a file (`@path`): an
 * input larger than one shell argument may hold (128 KiB on Linux) is given so, and a mistake names the
 * file. The built-in registry's `example.order` on an embedded store in a temporary directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN, ROOT } from './helpers/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'rmapp-json-arg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `rmapp <args>` on the temporary store, `stdin` written to its standard input. */
async function rmapp(args: string[], stdin: string | Buffer = '') {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: '', RMAPP_WORKFLOWS: '', RMAPP_DATA_DIR: join(dir, 'data') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // A command that stops reading (an input past its bound) closes the pipe before all of it is written.
  child.stdin.on('error', () => {});
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stdout, stderr, what: `rmapp ${args.join(' ').slice(0, 200)}: ${stderr}` };
}

it('start takes an input larger than a shell argument from a file or standard input', async () => {
  const orderId = 'o'.repeat(200 * 1024);
  const input = JSON.stringify({ orderId, amountCents: 1200 });
  writeFileSync(join(dir, 'input.json'), input);
  for (const [args, stdin] of [
    [['start', 'example.order', `@${join(dir, 'input.json')}`, '--json'], ''],
    [['start', 'example.order', '-', '--json'], input],
  ] as const) {
    const started = await rmapp([...args], stdin);
    expect(started.code, started.what).toBe(0);
    const { id } = JSON.parse(started.stdout) as { id: string };
    const shown = await rmapp(['runs', 'show', id, '--json']);
    expect(shown.code, shown.what).toBe(0);
    expect((JSON.parse(shown.stdout) as { input: { orderId: string } }).input.orderId, `${args.join(' ')}: the stored input`).toBe(orderId);
  }
});

it('a file that cannot be read or holds no JSON is named; bad JSON typed in shows an example of an input', async () => {
  const missing = join(dir, 'missing.json');
  writeFileSync(join(dir, 'bad.json'), '{"orderId":\n  oops }');
  const cases: [string[], string, RegExp][] = [
    [
      ['start', 'example.order', `@${missing}`],
      '',
      new RegExp(`The input file ${missing} cannot be read \\(ENOENT\\): fix the path after @`),
    ],
    [
      ['start', 'example.order', `@${join(dir, 'bad.json')}`],
      '',
      new RegExp(`The input in the file ${join(dir, 'bad.json')} is not valid JSON \\(`),
    ],
    [['start', 'example.order', '-'], '{"orderId": 1', /The input in standard input is not valid JSON \(/],
    [['runs', 'send', 'some-run', `@${missing}`], '', new RegExp(`The event file ${missing} cannot be read`)],
    [
      ['start', 'example.order', '{oops'],
      '',
      /input is not valid JSON: \{oops\. Quote it for the shell, e\.g\. '\{"orderId":"o-1","amountCents":1200\}'/,
    ],
  ];
  for (const [args, stdin, pattern] of cases) {
    const r = await rmapp(args, stdin);
    expect(r.code, r.what).toBe(1);
    expect(r.stderr, r.what).toMatch(pattern);
    expect(r.stderr.trim().split('\n'), r.what).toHaveLength(1);
  }
});

it('a file or standard input that is not UTF-8 is named with the byte; a byte order mark is left out', async () => {
  writeFileSync(
    join(dir, 'latin1.json'),
    Buffer.concat([Buffer.from('{"orderId":"'), Buffer.from([0xe9]), Buffer.from('","amountCents":1}')]),
  );
  writeFileSync(join(dir, 'bom.json'), `\uFEFF${JSON.stringify({ orderId: 'bom', amountCents: 1 })}`);
  const bad = await rmapp(['start', 'example.order', `@${join(dir, 'latin1.json')}`]);
  expect(bad.code, bad.what).toBe(1);
  expect(bad.stderr).toContain(`The input in the file ${join(dir, 'latin1.json')} is not UTF-8 text (byte 12 is not)`);
  const piped = await rmapp(['start', 'example.order', '-'], Buffer.from([0x7b, 0xff, 0x7d]));
  expect(piped.stderr, piped.what).toContain('The input in standard input is not UTF-8 text (byte 1 is not)');
  const started = await rmapp(['start', 'example.order', `@${join(dir, 'bom.json')}`, '--json']);
  expect(started.code, started.what).toBe(0);
});

it('reading a file or standard input stops past 16 MiB, saying so', async () => {
  const past = Buffer.alloc(16 * 1024 * 1024 + 1, 0x20);
  for (const [args, stdin] of [
    [['start', 'example.order', '@/dev/zero'], ''],
    [['start', 'example.order', '-'], past],
  ] as const) {
    const r = await rmapp([...args], stdin);
    expect(r.code, r.what).toBe(1);
    expect(r.stderr, r.what).toMatch(/is larger than 16 MiB, which is all rmapp reads/);
  }
});

it('empty standard input, a terminal for standard input and @ without a path are named', async () => {
  const empty = await rmapp(['start', 'example.order', '-'], '');
  expect(empty.code, empty.what).toBe(1);
  expect(empty.stderr, empty.what).toMatch(/^rmapp: Standard input was empty: pipe the input's JSON in/);
  // An empty file too (it said "not valid JSON (Unexpected end of JSON input)").
  writeFileSync(join(dir, 'empty.json'), ' \n');
  const emptyFile = await rmapp(['start', 'example.order', `@${join(dir, 'empty.json')}`]);
  expect(emptyFile.code, emptyFile.what).toBe(1);
  expect(emptyFile.stderr, emptyFile.what).toMatch(/^rmapp: The input file \S+empty\.json is empty: write the input's JSON in it/);
  const at = await rmapp(['runs', 'send', 'some-run', '@']);
  expect(at.code, at.what).toBe(1);
  expect(at.stderr, at.what).toMatch(/^rmapp: A path is missing after @: pass @FILE/);
  // A terminal: `script` gives the command one (util-linux's, in Debian's essential bsdutils).
  const script = spawnSync('script', ['--version']);
  expect(script.error, 'script(1) from bsdutils, needed to give the command a terminal').toBeUndefined();
  const cmd = [process.execPath, BIN, 'start', 'example.order', '-'].map((a) => `'${a}'`).join(' ');
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: '', RMAPP_WORKFLOWS: '', RMAPP_DATA_DIR: join(dir, 'data') },
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  expect(tty.stdout, tty.stderr).toMatch(/- reads the input from standard input, which is a terminal: pipe the JSON in or use @FILE/);
});
