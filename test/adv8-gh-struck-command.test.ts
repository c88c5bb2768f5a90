/**
 * A command its author struck through (`~~@rmapp implement~~`, `<del>…</del>`) is withdrawn: GitHub shows
 * it crossed out, and the service starts nothing for it, as for a quoted one. A command beside struck
 * words is still one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceWorld, example, type ServiceWorld } from './helpers/service-world.ts';

let sw: ServiceWorld;
beforeAll(async () => {
  sw = await createServiceWorld();
  sw.world.emulator.permissions.set('acme/widgets:alice', 'write');
});
afterAll(async () => sw?.stop());

const comment = (body: string) =>
  example('issue_comment', 'created', (p) => {
    p.issue.number = 3;
    delete p.issue.pull_request;
    p.comment.body = body;
    p.comment.user.login = 'alice';
    p.comment.user.type = 'User';
    p.sender.login = 'alice';
  });

describe('a struck-through command', () => {
  it.each([
    '~~@rmapp implement~~ (wrong issue, sorry)',
    '~@rmapp implement~',
    'Plan: ~~@rmapp\nimplement feature~~ done by hand.',
    '<del>@rmapp implement</del>',
    '<s>@rmapp cancel</s>',
    '<strike>@rmapp implement</strike>',
  ])('%j starts nothing', async (body) => {
    const res = await sw.deliver('issue_comment', comment(body));
    expect(res.body, body).toEqual({ ignored: 'comment does not mention the bot' });
  });

  it.each(['~~wrong~~ @rmapp status', '@rmapp status ~~please~~', 'x ~~~y~~~ @rmapp status'])('%j is still a command', async (body) => {
    const res = await sw.deliver('issue_comment', comment(body));
    expect(res.body.runId, JSON.stringify(res.body)).toEqual(expect.any(String));
  });
});
