/**
 * `rmapp worker`'s flags that give engine options: a value the engine refuses is named by the flag
 * (`--lease-ms`), not by the library option (`createEngine: leaseMs`), before anything is started.
 */
import { expect, it } from 'vitest';
import { runRmapp } from './helpers/processes.ts';

it('worker --lease-ms and --worker-id out of the engine rules are named by the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['worker', '--lease-ms', '10'], /^rmapp: --lease-ms must be at least 500 \(got 10\); the default is 30000\.\n$/],
    [
      ['worker', '--worker-id', 'a b'],
      /^rmapp: --worker-id must be 1 to 128 visible characters without spaces \(got "a b", 3 characters\)\.\n$/,
    ],
  ];
  for (const [args, pattern] of cases) {
    // A database that is never reached: the flags are checked first.
    const r = await runRmapp(args, { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/never-opened' });
    const what = `rmapp ${args.join(' ')}: ${r.stderr}`;
    expect(r.code, what).toBe(1);
    expect(r.stderr, what).toMatch(pattern);
  }
});
