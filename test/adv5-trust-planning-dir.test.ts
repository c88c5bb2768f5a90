/**
 * The planner of a run resumed where its workspace is not (another machine) runs in an empty directory.
 * It was a `mkdtemp` right under /tmp, given to the sandbox as its /workspace: the sandbox's user (the
 * service's own on the host) owns that directory, so the planning agent could `chmod 777` it and leave a
 * setuid program there, which any local user ran as the service's user while the planner ran. The
 * directory is now inside a folder of mode 0700 the sandbox never sees.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createActor, toPromise } from 'xstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import type { GitHubOctokit } from '../src/rmapp/github/client.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { removeTree } from '../src/rmapp/workspace-access.ts';
import { plantedUnderTmp } from './helpers/sandbox.ts';

describe('the planning directory of a run whose workspace is elsewhere', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rmapp-adv5-plan-'));
  });
  afterAll(async () => {
    await removeTree(root);
  });

  it.skipIf(process.getuid?.() !== 0)('keeps a setuid file the planning agent leaves there out of other users’ reach', async () => {
    const name = `planted-${randomUUID()}`;
    // The planning agent: opens its directory to all, leaves a setuid `id` there, waits to be told, answers nothing.
    const script = [
      'chmod 777 /workspace',
      `cp /usr/bin/id /workspace/${name}`,
      `chmod 4755 /workspace/${name}`,
      'i=0; while [ ! -e /workspace/done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
    ].join(' && ');
    const sandbox = createSandbox({ driver: 'bubblewrap' });
    const steps = issueImplementationSteps({
      github: {} as GitHubOctokit,
      workspaces: new Workspaces({ root: join(root, 'workspaces'), author: { name: 'rmapp', email: 'rmapp@example.com' } }),
      remoteUrl: () => 'file:///nowhere.git',
      agent: { kind: 'command', command: ['sh', '-c', script], timeoutMs: 120_000, sandbox },
      tests: { command: ['true'], timeoutMs: 60_000, sandbox },
    });
    const actor = createActor(steps.plan, {
      input: { issueNumber: 1, issue: { title: 'A title', body: 'A body', defaultBranch: 'main' } },
    }).start();
    const planning = toPromise(actor).catch(() => null);
    let planted: string | null = null;
    for (let i = 0; i < 600 && !planted; i++) {
      planted = plantedUnderTmp('rmapp-plan-', name);
      if (!planted) await new Promise((ok) => setTimeout(ok, 100));
    }
    try {
      expect(planted, 'the planning agent could not plant its file (the test did not run)').not.toBeNull();
      // `su`, not `setpriv`: setpriv keeps root's capabilities until it runs the program, so its path is looked up as root.
      const asNobody = await runCommand(['su', 'nobody', '-s', '/bin/sh', '-c', `exec '${planted as string}'`], {
        env: { PATH: '/usr/bin:/bin' },
        inheritEnv: false,
      });
      expect(asNobody.stdout, `user nobody ran the planning agent's setuid file ${planted}: ${asNobody.stdout}`).not.toMatch(/euid=0/);
    } finally {
      if (planted) writeFileSync(join(dirname(planted), 'done'), '');
      await planning;
      actor.stop();
    }
  });
});
