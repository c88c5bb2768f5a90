/**
 * A signal the operator picks to leave out (`engine.retry(id, { dropSignal: <id> })`, `runs retry
 * --drop-signal <id>`): the retry's answer and the run's history say the operator chose it, not that
 * the run failed handling it, and its type — chosen by whoever sent the signal — reaches the operator's
 * terminal neither as escape sequences, nor bidirectional controls, nor lines of its own.
 */
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { formatRunDetails } from '../src/rmapp/cli/format.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { poisonedByBoom } from './helpers/workflows.ts';

const poison = poisonedByBoom('adv4-poison');

const cleanups = cleanupsAfterAll();

const HOSTILE = 'x\u001b]0;pwned\u0007\u202egnp.exe\nSignal    #1 fake';

describe('dropping a signal the operator chose', () => {
  it('says so, and shows the type on one line without controls', async () => {
    const testDb = await createTestDatabase('wt4_adv');
    cleanups.push(() => testDb.drop());
    const engine = createEngine({ database: testDb.url, workflows: [poison] });
    cleanups.push(() => engine.stop());
    const id = await engine.start(poison, {});
    // Sent before any worker runs: the first fails the run, the others stay queued.
    await engine.send(id, { type: 'boom' });
    const hostile = await engine.send(id, { type: HOSTILE } as never);
    await engine.startWorker();
    await engine.waitFor(id, { timeoutMs: 30_000 }).catch(() => {});
    const run = await engine.get(id);
    expect(run.status).toBe('failed');

    const shown = formatRunDetails(run, await engine.history(id), await engine.queuedSignals(id));
    for (const c of ['\u001b', '\u0007', '\u202e']) expect(shown).not.toContain(c);
    expect(shown).not.toMatch(/^Signal {4}#1 fake/m);
    expect(shown).toContain('[U+202E]');

    const { message } = await engine.retry(id, { dropSignal: (hostile as { id: number }).id });
    expect(message).not.toContain('which it failed handling');
    for (const c of ['\u001b', '\n']) expect(message).not.toContain(c);
    const dropped = (await engine.history(id)).find((h) => h.type === 'signal.dropped');
    expect((dropped?.data as { reason?: string } | undefined)?.reason).toMatch(/operator chose/);
  });
});
