/**
 * `rmapp runs list --id-prefix / --parent` and `GET /api/runs?idPrefix=&parentRunId=` on one Postgres
 * database: the same runs for the same filter (the prefix matched literally: `%`, `_` and `\` are no
 * wildcards), and the same refusal, in each surface's words, for a value that is a mistake — checked
 * before the store is opened, and printed terminal-safe (the message quotes what was typed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';
import { CLI_FILTERS, HTTP_FILTERS, idPrefixProblem, parentRunIdProblem } from '../src/rmapp/run-list-filters.ts';
import { startApiServer } from './helpers/api-server.ts';
import { runRmapp, TEST_WORKFLOWS } from './helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const waiting = defineWorkflow({
  name: 'test.h5-filters',
  input: z.object({}),
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } } }),
});

let testDb: TestDatabase;
let engine: Engine;
let server: Awaited<ReturnType<typeof startApiServer>>;

beforeAll(async () => {
  testDb = await createTestDatabase();
  engine = createEngine({ workflows: [waiting], database: { url: testDb.url } });
  for (const id of ['abc-1', 'abc_2', 'abcx2', 'abd-1', 'parent-1', 'parent-2']) await engine.start(waiting, {}, { runId: id });
  for (const [id, parent] of [
    ['parent-1/child-a', 'parent-1'],
    ['parent-1/child-b', 'parent-1'],
    ['parent-2/child-a', 'parent-2'],
  ] as const)
    await engine.start(waiting, {}, { runId: id, parentRunId: parent });
  await (await engine.db()).query(`update rmapp_runs set status = 'cancelled' where id = 'parent-1/child-b'`);
  server = await startApiServer(engine, undefined);
}, 60_000);
afterAll(async () => {
  await server?.close();
  await engine?.stop();
  await testDb?.drop();
});

const rmapp = (...args: string[]) => runRmapp(['--workflows', TEST_WORKFLOWS, ...args], { DATABASE_URL: testDb.url });

/** The CLI's list for `args`, in its order; its stderr when it failed. */
async function cliIds(args: string[]): Promise<string[] | string> {
  const out = await rmapp('runs', 'list', '--json', '--limit', '100', ...args);
  if (out.code !== 0) return `exit ${out.code}: ${out.stderr}`;
  return (JSON.parse(out.stdout) as { id: string }[]).map((r) => r.id);
}

/** The API's list for `query`, in its order; its error when it failed. */
async function httpIds(query: string): Promise<string[] | string> {
  const res = await fetch(`${server.url}/api/runs?limit=100&${query}`);
  const body = (await res.json()) as { runs?: { id: string }[]; error?: string };
  return res.ok ? (body.runs ?? []).map((r) => r.id) : `${res.status}: ${body.error}`;
}

describe('the same filter on the same database', () => {
  // [CLI arguments, the API's query, the ids (sorted) both list]
  const cases: [string[], string, string[]][] = [
    [['--id-prefix', 'abc'], 'idPrefix=abc', ['abc-1', 'abc_2', 'abcx2']],
    [['--id-prefix', 'abc_'], 'idPrefix=abc_', ['abc_2']],
    [['--id-prefix', '_bc'], 'idPrefix=_bc', []],
    [['--id-prefix', 'abc%'], 'idPrefix=abc%25', []],
    [['--id-prefix', '%'], 'idPrefix=%25', []],
    [['--id-prefix', 'ab\\'], 'idPrefix=ab%5C', []],
    [['--id-prefix', 'parent-1/'], 'idPrefix=parent-1%2F', ['parent-1/child-a', 'parent-1/child-b']],
    [['--parent', 'parent-1'], 'parentRunId=parent-1', ['parent-1/child-a', 'parent-1/child-b']],
    [['--parent', 'parent-2'], 'parentRunId=parent-2', ['parent-2/child-a']],
    [['--parent', 'abc-1'], 'parentRunId=abc-1', []],
    [['--parent', 'parent-1', '--status', 'cancelled'], 'parentRunId=parent-1&status=cancelled', ['parent-1/child-b']],
    [['--parent', 'parent-1', '--id-prefix', 'parent-1/child-a'], 'parentRunId=parent-1&idPrefix=parent-1%2Fchild-a', ['parent-1/child-a']],
  ];

  it.each(cases)(
    'rmapp runs list %j lists what GET /api/runs?%s lists, in the same order',
    { timeout: 60_000 },
    async (args, query, ids) => {
      const [cli, http] = await Promise.all([cliIds(args), httpIds(query)]);
      expect(Array.isArray(http) ? [...http].sort() : http, `GET /api/runs?${query}`).toEqual(ids);
      expect(cli, `rmapp runs list ${args.join(' ')} against GET /api/runs?${query}`).toEqual(http);
    },
  );
});

describe('a mistaken filter', () => {
  // [the value, the CLI option, the API's parameter, what the message says]
  const refused: [string, '--id-prefix' | '--parent', string, RegExp][] = [
    ['', '--id-prefix', 'idPrefix', /is empty: \w+ the first characters of a run id, e\.g\. /],
    ['a'.repeat(201), '--id-prefix', 'idPrefix', /"a{120}…" is 201 characters, longer than any run id \(at most 200\)/],
    ['', '--parent', 'parentRunId', /"" is not a run id \(.+\): \w+ a whole run id, e\.g\. /],
    ['a b', '--parent', 'parentRunId', /"a b" is not a run id \(use letters, digits and \. _ : @ \/ -\)/],
    ['abc%', '--parent', 'parentRunId', /"abc%" is not a run id/],
    ['x/../y', '--parent', 'parentRunId', /"x\/\.\.\/y" is not a run id \(no part between slashes may be only dots/],
  ];

  it.each(refused)(
    '%j as %s is refused by the CLI and the API with one message, each naming its own filter',
    { timeout: 60_000 },
    async (value, option, param, says) => {
      const problem = option === '--id-prefix' ? idPrefixProblem : parentRunIdProblem;
      const cliMessage = problem(value, CLI_FILTERS);
      const httpMessage = problem(value, HTTP_FILTERS);
      expect(cliMessage, 'the CLI message').toMatch(new RegExp(`^The ${option} `));
      expect(cliMessage).toMatch(says);
      expect(httpMessage, 'the API message').toMatch(new RegExp(`^The ${param} `));
      expect(httpMessage).toMatch(says);
      // One message: the same words once each surface's names and verb are put back.
      const neutral = (text: string | null, s: typeof CLI_FILTERS) =>
        text
          ?.replaceAll(s.written(s.idPrefix, '019ad6b2'), 'PREFIX-EXAMPLE')
          .replaceAll(s.written(s.parentRunId, '019ad6b2-6c1e-7a3c-9f0e-3b1d2c4e5f60'), 'PARENT-EXAMPLE')
          .replaceAll(s.written(s.idPrefix, ''), 'PREFIX')
          .replaceAll(s.idPrefix, 'PREFIX')
          .replaceAll(s.parentRunId, 'PARENT')
          .replaceAll(s.shownIn, 'WHERE')
          .replace(/\b(send|give)\b/g, 'VERB');
      expect(neutral(cliMessage, CLI_FILTERS)).toBe(neutral(httpMessage, HTTP_FILTERS));

      const out = await rmapp('runs', 'list', option, value);
      expect(out.code, `rmapp runs list ${option} ${JSON.stringify(value)}: ${out.stderr}`).toBe(1);
      expect(out.stderr).toBe(`rmapp: ${cliMessage}\n`);
      expect(out.stdout).toBe('');
      const res = await fetch(`${server.url}/api/runs?${param}=${encodeURIComponent(value)}`);
      expect(res.status, `GET /api/runs?${param}=${JSON.stringify(value)}`).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe(httpMessage);
    },
  );

  it('a NUL byte or a lone surrogate (which no command line can carry) is refused by the shared check, naming the filter', () => {
    expect(idPrefixProblem('ab\0c', CLI_FILTERS)).toMatch(
      /^The --id-prefix "ab\\u0000c" contains a NUL byte, which no run id holds: give the first/,
    );
    expect(idPrefixProblem('ab\ud800', HTTP_FILTERS)).toMatch(
      /^The idPrefix "ab\\ud800" contains a lone UTF-16 surrogate, which is not text: send the first/,
    );
    expect(parentRunIdProblem('ab\0c', CLI_FILTERS)).toMatch(/^The --parent "ab\\u0000c" is not a run id/);
    // The prefix's LIKE metacharacters are no mistake: they stand for themselves.
    for (const literal of ['%', '_', '\\', 'a%_\\']) expect(idPrefixProblem(literal, CLI_FILTERS), literal).toBeNull();
  });

  it(
    'prints what was typed terminal-safe: escape sequences and bidi controls in the value are shown, not obeyed',
    { timeout: 60_000 },
    async () => {
      const typed = `\u001b]52;c;aGk=\u0007\u009b2J\u202egnp.exe${'x'.repeat(200)}`;
      const out = await rmapp('runs', 'list', '--id-prefix', typed);
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toMatch(/^rmapp: The --id-prefix ".+" is \d+ characters, longer than any run id/);
      // eslint-disable-next-line no-control-regex -- the control characters are what must not get through
      const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.exec(out.stderr);
      expect(raw, `a raw ${JSON.stringify(raw?.[0])} reached the terminal: ${JSON.stringify(out.stderr)}`).toBeNull();
      expect(out.stderr).toContain('\\u001b]52;c;aGk=\\u0007\\x9b2J[U+202E]gnp.exe');
    },
  );
});
