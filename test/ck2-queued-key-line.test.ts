/**
 * A queued run's status message names its concurrency key, which comes from the run's input: one holding
 * a line break printed the rest of the key as a line of its own in `rmapp runs show` (a forged `Error` line).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';
import { formatRunDetails } from '../src/rmapp/cli/format.ts';

const machine = setup({}).createMachine({ initial: 'idle', states: { idle: {} } });
const perKey = defineWorkflow({
  name: 'PerKey',
  machine,
  input: z.object({ k: z.string() }),
  concurrency: { limit: 1, scope: 'global', key: (i) => i.k },
});

let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

describe('a queued run whose concurrency key holds a line break', () => {
  it('is shown with its key quoted on its status line, the key as given in queue.key', async () => {
    engine = createEngine({ workflows: [perKey], database: { dataDir: 'memory://' } });
    const key = 'x.\nError     [validation] FORGED: a line of the key\u2028and\rmore\tafter';
    await engine.start(perKey, { k: key });
    const queued = await engine.get(await engine.start(perKey, { k: key }));
    expect(queued.queue).toMatchObject({ key, scope: 'global', position: 1 });
    expect(queued.statusMessage).toBe(`Queued: position 1 for global concurrency key ${JSON.stringify(key)}.`);
    const shown = formatRunDetails(queued, []).split('\n');
    expect(
      shown.filter((line) => line.startsWith('Error')),
      `rmapp runs show of run ${queued.id}:\n${shown.join('\n')}`,
    ).toEqual([]);
  });
});
