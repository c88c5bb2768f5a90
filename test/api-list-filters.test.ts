/**
 * `GET /api/runs?createdAfter=&inputContains=&idPrefix=&parentRunId=`: the engine's list filters through the HTTP API. A
 * client's mistake in either is a 400 naming the parameter and the form it takes, never a 5xx (Postgres
 * refused a NUL in jsonb and years outside 1–9999 as database errors) nor a filter quietly matching
 * nothing (JavaScript reads `2026-02-30` as 2 March).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow } from '../src/index.ts';
import { startApiServer } from './helpers/api-server.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const waiting = defineWorkflow({
  name: 'test.list-filters',
  input: z.object({ owner: z.string(), issue: z.object({ number: z.number() }) }),
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } } }),
});

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  it('lists the runs created after an instant and those whose input contains a JSON object; refuses malformed values with a 400', async () => {
    const engine = createEngine({ workflows: [waiting], database: await engineDatabaseFor(kind, cleanups) });
    cleanups.push(() => engine.stop());
    const server = await startApiServer(engine, undefined);
    cleanups.push(() => server.close());
    const created: [string, string, number][] = [
      ['old-acme-1', '2020-01-01T00:00:00Z', 1],
      ['new-acme-2', '2026-03-01T10:00:00Z', 2],
      ['new-other-2', '2026-03-01T10:00:01Z', 2],
    ];
    for (const [id, at, number] of created) {
      await engine.start(waiting, { owner: id.split('-')[1] as string, issue: { number } }, { runId: id });
      await (await engine.db()).query('update rmapp_runs set created_at = $1::timestamptz where id = $2', [at, id]);
    }
    const get = async (query: string) => {
      const res = await fetch(`${server.url}/api/runs?${query}`);
      const body = (await res.json()) as { runs?: { id: string }[]; error?: string };
      return { status: res.status, ids: body.runs?.map((r) => r.id), error: body.error };
    };
    const contains = (json: unknown) => `inputContains=${encodeURIComponent(JSON.stringify(json))}`;

    expect(await get('createdAfter=2026-03-01')).toMatchObject({ status: 200, ids: ['new-other-2', 'new-acme-2'] });
    // Strictly after; an offset is the same instant (its + encoded: a + in a query is a space).
    expect(await get('createdAfter=2026-03-01T10:00:00Z')).toMatchObject({ ids: ['new-other-2'] });
    expect(await get('createdAfter=2026-03-01T12:00:00%2B02:00')).toMatchObject({ ids: ['new-other-2'] });
    expect(await get('createdAfter=2026-03-01T09:59:59.999-00:00')).toMatchObject({ ids: ['new-other-2', 'new-acme-2'] });
    expect(await get(contains({ owner: 'acme' }))).toMatchObject({ status: 200, ids: ['new-acme-2', 'old-acme-1'] });
    expect(await get(contains({ issue: { number: 2 } }))).toMatchObject({ ids: ['new-other-2', 'new-acme-2'] });
    expect(await get(`${contains({ owner: 'acme' })}&createdAfter=2025-12-31&status=pending&workflow=test.list-filters`)).toMatchObject({
      ids: ['new-acme-2'],
    });
    expect(await get(contains({ owner: 'nobody' }))).toMatchObject({ status: 200, ids: [] });

    const refused: [string, RegExp][] = [
      [
        'createdAfter=yesterday',
        /^The createdAfter "yesterday" is not a date or an instant: send an ISO 8601 instant such as \?createdAfter=2026-03-01T09:30:00Z/,
      ],
      ['createdAfter=', /^The createdAfter "" is not a date or an instant/],
      ['createdAfter=2026-03-01T10:00:00', /^The createdAfter "2026-03-01T10:00:00" is not a date or an instant/],
      [
        'createdAfter=2026-03-01T10:00:00+02:00',
        /^The createdAfter "2026-03-01T10:00:00 02:00" is not a date or an instant \(its \+ arrived as a space: write it %2B\)/,
      ],
      ['createdAfter=1772359200000', /^The createdAfter "1772359200000" is not a date or an instant/],
      ['createdAfter=2026-02-30', /^The createdAfter "2026-02-30" has no such day or time: send an ISO 8601 instant/],
      ['createdAfter=2025-02-29T00:00:00Z', /has no such day or time/],
      ['createdAfter=2026-03-01T24:00:00Z', /has no such day or time/],
      ['createdAfter=0000-06-01', /^list: createdAfter must be a Date from year 1 to 9999/],
      ['createdAfter=9999-12-31T23:00:00-05:00', /^list: createdAfter must be a Date from year 1 to 9999/],
      [
        'inputContains=acme',
        /^The inputContains "acme" is not JSON: send a JSON object, e\.g\. \?inputContains=%7B%22issueNumber%22%3A12%7D/,
      ],
      ['inputContains=', /^The inputContains "" is not JSON/],
      [contains([1]), /^The inputContains "\[1\]" is JSON but an array, not an object/],
      [contains(null), /^The inputContains "null" is JSON but null, not an object/],
      [contains('acme'), /^The inputContains "\\"acme\\"" is JSON but a string, not an object/],
      [`inputContains=${encodeURIComponent('{"n":12345678901234567890}')}`, /^The inputContains holds the number 12345678901234567890/],
      [contains({ owner: '\u0000' }), /^list: inputContains\.owner holds a NUL character/],
      [contains({ owner: '\ud800' }), /^list: inputContains\.owner holds a lone UTF-16 surrogate/],
      [contains({ owner: 'a'.repeat(2_000) }), /^list: inputContains is 2012 bytes of UTF-8; at most 1000/],
      ['inputContains=%00', /query parameter "inputContains" contains a NUL byte/],
    ];
    for (const [query, error] of refused) {
      const answer = await get(query);
      expect(answer.status, `${query}: ${answer.error}`).toBe(400);
      expect(answer.error, query).toMatch(error);
    }
  });

  it('lists the runs whose id starts with a prefix (matched literally) and the children of a run; refuses malformed values with a 400', async () => {
    const engine = createEngine({ workflows: [waiting], database: await engineDatabaseFor(kind, cleanups) });
    cleanups.push(() => engine.stop());
    const server = await startApiServer(engine, undefined);
    cleanups.push(() => server.close());
    const input = { owner: 'acme', issue: { number: 1 } };
    for (const id of ['abc-1', 'abc_2', 'abcx2', 'abd-1', 'parent-1', 'parent-2']) await engine.start(waiting, input, { runId: id });
    for (const [id, parent] of [
      ['parent-1/child-a', 'parent-1'],
      ['parent-1/child-b', 'parent-1'],
      ['parent-2/child-a', 'parent-2'],
    ] as const)
      await engine.start(waiting, input, { runId: id, parentRunId: parent });
    // Another status without a worker to run it (these engines run none).
    await (await engine.db()).query(`update rmapp_runs set status = 'cancelled' where id = 'parent-1/child-b'`);
    const get = async (query: string) => {
      const res = await fetch(`${server.url}/api/runs?${query}`);
      const body = (await res.json()) as { runs?: { id: string }[]; error?: string };
      return { status: res.status, ids: body.runs?.map((r) => r.id).sort(), error: body.error };
    };

    expect(await get('idPrefix=abc')).toEqual({ status: 200, ids: ['abc-1', 'abc_2', 'abcx2'], error: undefined });
    // `_` and `%` are no wildcards, nor is a backslash an escape: each stands for itself.
    expect(await get('idPrefix=abc_')).toMatchObject({ status: 200, ids: ['abc_2'] });
    for (const literal of ['abc%25', '%25', 'a%5C%25', 'ab%5C', 'abc%5C_', '_bc'])
      expect(await get(`idPrefix=${literal}`), literal).toMatchObject({ status: 200, ids: [] });
    expect(await get(`idPrefix=${encodeURIComponent('parent-1/')}`)).toMatchObject({ ids: ['parent-1/child-a', 'parent-1/child-b'] });
    expect(await get('parentRunId=parent-1')).toMatchObject({ status: 200, ids: ['parent-1/child-a', 'parent-1/child-b'] });
    expect(await get('parentRunId=parent-2')).toMatchObject({ ids: ['parent-2/child-a'] });
    expect(await get('parentRunId=abc-1')).toMatchObject({ status: 200, ids: [] });
    expect(await get('parentRunId=parent-1&status=cancelled')).toMatchObject({ ids: ['parent-1/child-b'] });
    expect(await get('parentRunId=parent-1&idPrefix=parent-1/child-a')).toMatchObject({ ids: ['parent-1/child-a'] });

    const refused: [string, RegExp][] = [
      ['idPrefix=', /^The idPrefix is empty: send the first characters of a run id, e\.g\. \?idPrefix=019ad6b2/],
      [`idPrefix=${'a'.repeat(201)}`, /^The idPrefix "a{120}…" is 201 characters, longer than any run id \(at most 200\)/],
      ['idPrefix=%00', /query parameter "idPrefix" contains a NUL byte/],
      ['parentRunId=', /^The parentRunId "" is not a run id \(.+\): send a whole run id, e\.g\. \?parentRunId=019ad6b2-/],
      ['parentRunId=a%20b', /^The parentRunId "a b" is not a run id \(use letters, digits and \. _ : @ \/ -\)/],
      ['parentRunId=abc%25', /^The parentRunId "abc%" is not a run id/],
      ['parentRunId=x%2F..%2Fy', /^The parentRunId "x\/..\/y" is not a run id \(no part between slashes may be only dots/],
      [`parentRunId=${'a'.repeat(201)}`, /^The parentRunId "a{120}…" is not a run id/],
    ];
    for (const [query, error] of refused) {
      const answer = await get(query);
      expect(answer.status, `${query}: ${answer.error}`).toBe(400);
      expect(answer.error, query).toMatch(error);
    }
  });
});
