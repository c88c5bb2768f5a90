/** Named fault points (RMAPP_FAULT): parsing, matching, counting, and a real SIGKILL. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FaultPoints, faultsArmed, parseFaultSpec, stateTargets, type ArmedFault } from '../src/state_machine/fault-points.ts';
import { ROOT } from './helpers/processes.ts';

it('is unarmed unless RMAPP_FAULT says otherwise', () => {
  expect(process.env.RMAPP_FAULT).toBeUndefined();
  expect(faultsArmed).toBe(false);
  expect(parseFaultSpec(undefined)).toEqual([]);
  expect(parseFaultSpec('  ')).toEqual([]);
});

it('parses <point>:<target>[:<nth>], several separated by commas, and names the fix for a typo', () => {
  expect(parseFaultSpec('after-side-effect:createPR')).toEqual([{ point: 'after-side-effect', target: 'createPR', nth: 1 }]);
  expect(parseFaultSpec('before-persist:testing:2, after-persist:*')).toEqual([
    { point: 'before-persist', target: 'testing', nth: 2 },
    { point: 'after-persist', target: '*', nth: 1 },
  ]);
  expect(() => parseFaultSpec('after-effect:createPR')).toThrow(
    /RMAPP_FAULT: "after-effect:createPR" is not <point>:<target>\[:<nth>\].*before-persist/,
  );
  expect(() => parseFaultSpec('before-persist')).toThrow(/RMAPP_FAULT/);
  expect(() => parseFaultSpec('before-persist:x:0')).toThrow(/RMAPP_FAULT/);
});

it('matches states by name and by dotted path', () => {
  expect(stateTargets('creatingPR')).toEqual(['creatingPR']);
  expect(stateTargets({ review: { fixing: 'applying' }, timer: 'armed' })).toEqual([
    'review',
    'review.fixing',
    'review.fixing.applying',
    'timer',
    'timer.armed',
  ]);
  expect(stateTargets(null)).toEqual([]);
});

it('fires on the nth arrival for its target only, once', () => {
  const fired: [ArmedFault, string][] = [];
  const points = new FaultPoints(parseFaultSpec('after-side-effect:createPR:2,before-persist:*'), (f, m) => fired.push([f, m]));
  points.reach('after-side-effect', ['implement', '0.x.implementing']);
  points.reach('before-side-effect', ['createPR', '0.x.creatingPR']);
  points.reach('after-side-effect', ['createPR', '0.x.creatingPR']);
  expect(fired).toEqual([]);
  points.reach('after-side-effect', ['createPR', '0.x.creatingPR']);
  points.reach('after-side-effect', ['createPR', '0.x.creatingPR']);
  points.reach('before-persist', ['analyzing']);
  points.reach('before-persist', ['planning']);
  expect(fired.map(([f, m]) => `${f.point}:${f.target}@${m}`)).toEqual([
    'after-side-effect:createPR@createPR',
    'before-persist:*@analyzing',
  ]);
});

it('kills the process with SIGKILL when an armed point is reached', () => {
  const script = join(mkdtempSync(join(tmpdir(), 'rmapp-fault-')), 'reach.ts');
  writeFileSync(
    script,
    `import { reachFaultPoint } from ${JSON.stringify(join(ROOT, 'src/state_machine/fault-points.ts'))};\n` +
      `reachFaultPoint('after-side-effect', ['createPR']);\nconsole.log('survived once');\n` +
      `reachFaultPoint('after-side-effect', ['createPR']);\nconsole.log('survived twice');\n`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, RMAPP_FAULT: 'after-side-effect:createPR:2' },
    encoding: 'utf8',
  });
  expect(r.signal).toBe('SIGKILL');
  expect(r.stdout).toBe('survived once\n');
  expect(r.stderr).toContain('rmapp: fault point after-side-effect:createPR:2 reached at createPR; SIGKILL');
});
