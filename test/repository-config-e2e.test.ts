/**
 * A repository's `.github/rmapp.yml`, `@rmapp retry` and the attempt that changes nothing, end to end:
 * the service's registry (githubWorkflows) on the real engine (PGlite), comments delivered as
 * GitHubDelivery runs, GitHub emulated behind real Octokit, a real git remote, and the scripted agent,
 * the setup and the tests as real commands in the bubblewrap sandbox. Every sandboxed command is
 * written to a ledger outside the engine (a wrapper around the sandbox), so what ran — and in which
 * order, with which network — is seen as it happened, not as the engine reports it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import type { GitHubEventInput } from '../src/machines/github-delivery.ts';
import type { Sandbox, SandboxJob } from '../src/rmapp/sandbox/index.ts';
import { githubWorkflows } from '../src/rmapp/workflows/github-workflows.ts';
import { ensurePullRequest } from '../src/rmapp/github/writes.ts';
import type { WorkflowExecutor } from '../src/rmapp/workflows/executor.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { testSandbox } from './helpers/sandbox.ts';

/** The repository's own test: `impl.txt` must say `right`. */
const CHECK_JS = `const fs = require('fs');
const v = fs.existsSync('impl.txt') ? fs.readFileSync('impl.txt', 'utf8').trim() : '(missing)';
console.log('check.js: expected impl.txt to say right, got ' + v);
process.exit(v === 'right' ? 0 : 1);
`;

const GOOD_CONFIG = `# rmapp settings of acme/widgets
setup:
  - [sh, -c, "echo ready > setup-marker.txt"]
test: node check.js
instructions: |
  Keep changes small.
  WRITE instructed.txt yes
protectedPaths: ["secrets/**"]
sandbox:
  network: [registry.npmjs.org]
limits:
  maxTestAttempts: 2
`;

interface LedgerLine {
  argv: readonly string[];
  workspace: string;
  network: readonly string[];
  input: string;
}

interface Harness {
  world: GitHubWorld;
  engine: Engine;
  executor: WorkflowExecutor;
  ledger: LedgerLine[];
  /** Delivers `@rmapp …` on issue `n` and waits for the delivery run; returns its outcome. */
  comment(n: number, body: string): Promise<{ action: string; runId: string | null; message: string }>;
  /** The ledger lines of a run's workspace. */
  linesOf(runId: string): LedgerLine[];
  stop(): Promise<void>;
}

let nextCommentId = 5_000;

async function harness(files: Record<string, string>): Promise<Harness> {
  const world = await createGitHubWorld(files);
  world.emulator.permissions.set('acme/widgets:octocat', 'write');
  const ledger: LedgerLine[] = [];
  const counting: Sandbox = {
    ...testSandbox,
    run: (job: SandboxJob) => {
      ledger.push({
        argv: job.argv,
        workspace: job.workspace,
        network: [...(job.network ?? []), ...(job.repositoryNetwork ?? [])],
        input: job.input ?? '',
      });
      return testSandbox.run(job);
    },
  };
  const registry = githubWorkflows({
    ...world.deps,
    agent: { ...world.deps.agent, sandbox: counting },
    tests: { ...world.deps.tests, sandbox: counting },
    botName: 'rmapp',
    labels: {},
    maxTestAttempts: 3,
  });
  const engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: registry.workflows,
    previousVersions: registry.previousVersions,
    pollMs: 50,
  });
  const executor = registry.bind(engine);
  await engine.startWorker();
  return {
    world,
    engine,
    executor,
    ledger,
    async comment(n, body) {
      const event: GitHubEventInput = {
        deliveryId: randomUUID(),
        event: 'issue_comment',
        action: 'created',
        owner: 'acme',
        repo: 'widgets',
        installationId: null,
        number: n,
        isPullRequest: false,
        author: 'octocat',
        body,
        commentId: nextCommentId++,
        reviewId: null,
        label: null,
      };
      const run = await engine.waitFor(await executor.startForEvent(event), { timeoutMs: 60_000 });
      expect(run.status, `delivery of "${body}" on #${n}: ${JSON.stringify(run.error)}`).toBe('succeeded');
      return (run.output as { outcome: { action: string; runId: string | null; message: string } }).outcome;
    },
    linesOf: (runId) => ledger.filter((l) => l.workspace === world.deps.workspaces.dirOf(runId)),
    async stop() {
      await engine.stop();
      await world.stop();
    },
  };
}

const isTest = (l: LedgerLine) => l.argv.join(' ') === 'node check.js';
const isSetup = (l: LedgerLine) => l.argv[0] === 'sh';
const isAgent = (l: LedgerLine) => l.argv.join(' ') === harnessAgent;
let harnessAgent = '';

describe('a repository with .github/rmapp.yml', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      'README.md': '# widgets\n',
      'check.js': CHECK_JS,
      '.github/rmapp.yml': GOOD_CONFIG,
      'AGENTS.md': 'Agents read this.\nWRITE agents-md.txt yes\n',
      'secrets/README.md': 'Keys live here; only people change them.\n',
    });
    harnessAgent = h.world.deps.agent.command.join(' ');
  });
  afterAll(async () => h?.stop());

  it('runs the setup in the sandbox before the agent, gives the agent the instructions, and tests with the repository command', async () => {
    h.world.emulator.issues.set('acme/widgets#1', {
      title: 'Make impl.txt say right',
      body: 'PLAN write impl.txt\nCOPY setup-marker.txt seen-setup.txt\nWRITE impl.txt right',
    });
    const started = await h.comment(1, '@rmapp implement');
    expect(started.action, started.message).toBe('started');
    const run = await h.engine.waitFor(started.runId as string, { timeoutMs: 90_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');

    const lines = h.linesOf(run.id);
    const kinds = lines.map((l) => (isSetup(l) ? 'setup' : isTest(l) ? 'test' : isAgent(l) ? 'agent' : l.argv.join(' ')));
    // analysis and plan (the agent reads only), then the setup, then the implementing agent, then the repository's test.
    expect(kinds, 'order of sandboxed commands').toEqual(['agent', 'agent', 'setup', 'agent', 'test']);
    const remote = h.world.remote;
    const show = (path: string) => h.world.git(remote, 'show', `rmapp/issue-1:${path}`);
    // The file the setup wrote was there for the agent to copy; the setup's own output is not committed.
    expect(await show('seen-setup.txt')).toBe('ready');
    expect(await h.world.git(remote, 'ls-tree', '--name-only', 'rmapp/issue-1')).not.toMatch(/setup-marker\.txt/);
    // The instructions of rmapp.yml and of AGENTS.md reached the implementing prompt (the agent acted on them) …
    expect(await show('instructed.txt')).toBe('yes');
    expect(await show('agents-md.txt')).toBe('yes');
    // … and every prompt: analysis, plan and implement each carry the section.
    for (const l of lines.filter(isAgent)) {
      expect(l.input, 'a prompt without the repository instructions').toContain('## Repository instructions');
      expect(l.input).toContain('From .github/rmapp.yml:\n\nKeep changes small.');
      expect(l.input).toContain('From AGENTS.md:\n\nAgents read this.');
    }
    // The repository's hosts are for its setup and tests, never for the agent (which holds its API key).
    for (const l of lines) expect(l.network, `network of ${kinds[lines.indexOf(l)]}`).toEqual(isAgent(l) ? [] : ['registry.npmjs.org']);
    // `limits.maxTestAttempts: 2` lowered the service's 3.
    expect((run.input as { maxTestAttempts: number }).maxTestAttempts).toBe(2);
  });

  /** `@rmapp implement` on issue `n` (titled `title`, its body directives for the scripted agent): the finished run. */
  const implement = async (n: number, title: string, body: string) => {
    h.world.emulator.issues.set(`acme/widgets#${n}`, { title, body });
    const started = await h.comment(n, '@rmapp implement');
    return h.engine.waitFor(started.runId as string, { timeoutMs: 90_000 });
  };

  it('fails clearly when the agent touches a protected path, and pushes nothing of it', async () => {
    const run = await implement(2, 'Rotate the key', 'PLAN rotate\nWRITE secrets/key.txt new-key\nWRITE impl.txt right');
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'PROTECTED_PATHS', category: 'validation' });
    expect(run.error?.message).toMatch(/^implementing: The agent changed a protected path: secrets\/key\.txt \(secrets\/\*\*\)\./);
    expect(run.error?.message).toContain('`protectedPaths` in .github/rmapp.yml forbids it');
    // The draft PR's branch holds the plan's commit only: nothing of the refused attempt.
    expect(await h.world.git(h.world.remote, 'ls-tree', '-r', '--name-only', 'rmapp/issue-2'), 'the refused change was pushed').not.toMatch(
      /secrets\/key\.txt|impl\.txt/,
    );
    expect((await h.world.git(h.world.remote, 'rev-list', '--count', 'main..rmapp/issue-2')).trim(), 'commits beyond the plan').toBe('1');
    expect(h.linesOf(run.id).filter(isTest), 'the tests ran after a protected path was touched').toHaveLength(0);
  });

  it('checks what the analysing agent changed with the implementing attempt: the draft’s plan commit holds the plan only', async () => {
    const run = await implement(
      6,
      'Make impl.txt say right',
      'ANALYZE WRITE secrets/README.md changed by the analysis\nPLAN write impl.txt\nWRITE impl.txt right',
    );
    expect(run.error, 'a change of the analysing agent to a protected path').toMatchObject({ code: 'PROTECTED_PATHS' });
    expect(run.error?.message).toContain('secrets/README.md (secrets/**)');
    // The draft's branch: the plan's commit, without the analysis's change.
    expect(await h.world.git(h.world.remote, 'show', 'rmapp/issue-6:secrets/README.md'), 'pushed with the plan').toBe(
      'Keys live here; only people change them.',
    );
  });

  it("stops the loop with the agent's own message when an attempt after a failed test run changes nothing", async () => {
    h.world.emulator.issues.set('acme/widgets#3', {
      title: 'Hard one',
      body: 'PLAN try\nWRITE impl.txt wrong\nIF_FAILED SAY I could not find why impl.txt must say right.',
    });
    const started = await h.comment(3, '@rmapp implement');
    const run = await h.engine.waitFor(started.runId as string, { timeoutMs: 90_000 });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'NO_CHANGE', category: 'agent' });
    expect(run.error?.message).toContain('the agent changed nothing after the failed test run, so the tests were not run again');
    expect(run.error?.message).toContain('The agent said: ');
    expect(run.error?.message).toContain('I could not find why impl.txt must say right.');
    expect(h.linesOf(run.id).filter(isTest), 'the same tests ran again on an unchanged tree').toHaveLength(1);
  });

  it('`@rmapp retry` after the tests never passed runs implement and the tests again with a fresh budget, on the same branch and plan', async () => {
    h.world.emulator.issues.set('acme/widgets#4', {
      title: 'Stubborn',
      body: 'PLAN try\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt still-wrong',
    });
    const first = await h.engine.waitFor((await h.comment(4, '@rmapp implement')).runId as string, { timeoutMs: 90_000 });
    expect(first.status).toBe('failed');
    expect(first.error).toMatchObject({ code: 'TESTS_FAILED' });
    expect(h.linesOf(first.id).filter(isTest)).toHaveLength(2);
    // The engine will not pretend: the machine ended this run in its failure state.
    await expect(h.engine.retry(first.id)).rejects.toThrow(
      /cannot be retried: its workflow ended it in its failure state "failed" \(TESTS_FAILED/,
    );

    // The maintainer says how to fix it in the issue, then asks for a retry.
    h.world.emulator.issues.set('acme/widgets#4', {
      title: 'Stubborn',
      body: 'PLAN try\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt right',
    });
    const retried = await h.comment(4, '@rmapp retry');
    expect(retried.action, retried.message).toBe('retried');
    expect(retried.runId).not.toBe(first.id);
    expect(retried.message).toContain('continues run');
    expect(retried.message).toContain('on its branch with the same plan — implementing again, then up to 2 test rounds.');
    expect(retried.message).toContain('It failed with: the tests still fail after 2 attempts');
    const replies = (h.world.emulator.comments.get('acme/widgets#4') ?? []).filter((c) => c.body.includes('retrying'));
    expect(replies, 'one reply to the retry').toHaveLength(1);
    expect(replies[0]?.body).toMatch(/^@octocat retrying: run /);

    const second = await h.engine.waitFor(retried.runId as string, { timeoutMs: 90_000 });
    expect(second.status, JSON.stringify(second.error)).toBe('succeeded');
    const entered = (await h.engine.history(second.id)).filter((e) => e.type === 'state.entered').map((e) => e.state);
    expect(entered).toEqual(['analyzing', 'openingDraftPR', 'implementing', 'testing', 'creatingPR', 'complete']);
    // Counted outside the engine: the tests really ran again, and the agent was not asked to analyse or plan.
    const lines = h.linesOf(second.id);
    expect(lines.filter(isTest)).toHaveLength(1);
    expect(lines.filter(isAgent)).toHaveLength(1);
    expect(lines.find(isAgent)?.input, 'the agent saw the failure it must fix').toContain(
      'check.js: expected impl.txt to say right, got still-wrong',
    );
    expect(await h.world.git(h.world.remote, 'show', 'rmapp/issue-4:impl.txt')).toBe('right');
    expect((h.world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-4')).toHaveLength(1);
  }, 120_000);
});

describe('a review fix in a repository with .github/rmapp.yml', () => {
  let h: Harness;
  let pullNumber: number;
  beforeAll(async () => {
    h = await harness({
      'README.md': '# widgets\n',
      '.github/rmapp.yml': GOOD_CONFIG,
      'secrets/README.md': 'Keys live here.\n',
      'check.js': 'process.exit(0);\n',
    });
    harnessAgent = h.world.deps.agent.command.join(' ');
    // rmapp's own pull request (opened by its client, from a branch it names): a review pushes only there.
    await h.world.git(h.world.remote, 'branch', 'rmapp/issue-900', 'main');
    const pr = await ensurePullRequest(
      h.world.github,
      { owner: 'acme', repo: 'widgets' },
      { head: 'rmapp/issue-900', base: 'main', title: 'Feature', body: '', key: 'seed' },
    );
    pullNumber = pr.number;
  });
  afterAll(async () => h?.stop());

  const review = async (body: string) => {
    const commentId = h.world.emulator.addReviewComment('acme', 'widgets', pullNumber, body, 'octocat', { path: 'README.md', line: 1 });
    const run = await h.engine.waitFor(await h.engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber, commentId }), {
      timeoutMs: 90_000,
    });
    const replies = (h.world.emulator.reviewComments.get(`acme/widgets#${pullNumber}`) ?? []).filter((c) => c.in_reply_to_id === commentId);
    return { run, replies };
  };

  it('sets up, gives the agent the instructions, and refuses a fix that touches a protected path', async () => {
    const before = await h.world.git(h.world.remote, 'rev-parse', 'rmapp/issue-900');
    const refused = await review('@rmapp rotate the key\nWRITE secrets/key.txt new-key');
    expect(refused.run.status).toBe('failed');
    expect(refused.run.error).toMatchObject({ code: 'PROTECTED_PATHS' });
    expect(refused.replies).toHaveLength(1);
    expect(refused.replies[0]?.body).toContain('The agent changed a protected path: secrets/key.txt (secrets/**).');
    expect(await h.world.git(h.world.remote, 'rev-parse', 'rmapp/issue-900'), 'the refused fix was pushed').toBe(before);

    const done = await review('@rmapp tidy up\nCOPY setup-marker.txt seen-setup.txt');
    expect(done.run.status, JSON.stringify(done.run.error)).toBe('succeeded');
    const lines = h.linesOf(done.run.id);
    // The repository's test command runs on the change before it is pushed.
    expect(lines.map((l) => (isSetup(l) ? 'setup' : isAgent(l) ? 'agent' : l.argv.join(' ')))).toEqual(['setup', 'agent', 'node check.js']);
    expect(lines.find(isAgent)?.input).toContain('## Repository instructions\n\nFrom .github/rmapp.yml:\n\nKeep changes small.');
    expect(await h.world.git(h.world.remote, 'show', 'rmapp/issue-900:seen-setup.txt')).toBe('ready');
    expect(await h.world.git(h.world.remote, 'show', 'rmapp/issue-900:instructed.txt')).toBe('yes');
    // The refused key reached no branch.
    expect(await h.world.git(h.world.remote, 'ls-tree', '-r', '--name-only', 'rmapp/issue-900')).not.toMatch(/secrets\/key\.txt/);
  });

  it('refuses a fix whose tests wrote a protected path (the tests run the changed code), and pushes nothing', async () => {
    const before = await h.world.git(h.world.remote, 'rev-parse', 'rmapp/issue-900');
    const r = await review("@rmapp speed up the check\nWRITE check.js require('fs').writeFileSync('secrets/key.txt', 'from the tests');");
    expect(r.run.status).toBe('failed');
    expect(r.run.error).toMatchObject({ code: 'PROTECTED_PATHS' });
    expect(r.run.error?.message).toContain('secrets/key.txt (secrets/**)');
    expect(h.linesOf(r.run.id).filter(isTest), 'the tests ran').toHaveLength(1);
    expect(await h.world.git(h.world.remote, 'rev-parse', 'rmapp/issue-900'), 'the fix was pushed').toBe(before);
  });
});

describe('a repository whose .github/rmapp.yml is wrong', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      'README.md': '# widgets\n',
      '.github/rmapp.yml': 'tset: npm test\nprotectedPaths: migrations\nlimits:\n  maxTestAttempts: 50\n',
    });
  });
  afterAll(async () => h?.stop());

  it('gets one reply naming each key and the fix, and nothing runs', async () => {
    h.world.emulator.issues.set('acme/widgets#1', { title: 'Anything', body: 'WRITE impl.txt right' });
    const outcome = await h.comment(1, '@rmapp implement');
    expect(outcome).toMatchObject({ action: 'replied', runId: null });
    const comments = h.world.emulator.comments.get('acme/widgets#1') ?? [];
    expect(comments).toHaveLength(1);
    const body = comments[0]?.body ?? '';
    expect(body).toMatch(/^@octocat I did not start: `\.github\/rmapp\.yml` on the default branch is invalid, so nothing ran\./);
    expect(body).toContain('- ` tset `: unknown setting "tset" (did you mean "test"?); known here: setup, test, lint, instructions');
    expect(body).toMatch(
      /- ` protectedPaths `: .* — expected a list of globs, e\.g\. protectedPaths: \[".github\/\*\*", "migrations\/\*\.sql"\]/,
    );
    expect(body).toMatch(/- ` limits\.maxTestAttempts `: .* — expected a whole number from 1 to 10/);
    expect(body).toContain('Fix it on the default branch, then ask again.');
    expect(await h.engine.list({ idPrefix: 'acme/widgets/issues/1/' }), 'a run started').toHaveLength(0);
    expect(h.ledger, 'something ran in the sandbox').toHaveLength(0);
    expect(await h.world.git(h.world.remote, 'branch', '--list', 'rmapp/issue-1')).toBe('');
  });
});

describe('a repository whose .github/rmapp.yml has a hostile key', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      'README.md': '# widgets\n',
      // An unknown key holding a backtick, two carriage returns, a mention and an image (YAML escapes).
      '.github/rmapp.yml': 'tset: npm test\n"a`\\r\\r@mallory ![p](https://tracker.example/p.png) <img src=x>": 1\n',
    });
  });
  afterAll(async () => h?.stop());

  it('is quoted in the reply as inert text: no mention, image or HTML', async () => {
    h.world.emulator.issues.set('acme/widgets#1', { title: 'Anything', body: 'WRITE impl.txt right' });
    expect(await h.comment(1, '@rmapp implement')).toMatchObject({ action: 'replied', runId: null });
    const body = h.world.emulator.comments.get('acme/widgets#1')?.[0]?.body ?? '';
    expect(body, 'the reply names the key').toContain('mallory');
    expect(body, 'a line ending in the reply').not.toContain('\r');
    // What GitHub renders as Markdown: the text outside code spans (a fence of n backticks and a space).
    const prose = body.replace(/(`+) .*? \1/g, '');
    expect(prose, 'a mention outside code').not.toMatch(/@mallory/);
    expect(prose, 'an image outside code').not.toMatch(/(?<!\\)!\[p\]/);
    expect(prose, 'HTML outside code').not.toMatch(/(?<!\\)<img/);
  });
});

describe('a repository whose setup fails', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      'README.md': '# widgets\n',
      '.github/rmapp.yml': 'setup:\n  - [sh, -c, "echo installing; echo cannot reach the registry >&2; exit 3"]\n',
    });
  });
  afterAll(async () => h?.stop());

  it('fails the run with the command, its exit code and the end of its output, before the implementing agent runs', async () => {
    h.world.emulator.issues.set('acme/widgets#1', { title: 'Anything', body: 'PLAN x\nWRITE impl.txt right' });
    const started = await h.comment(1, '@rmapp implement');
    const run = await h.engine.waitFor(started.runId as string, { timeoutMs: 90_000 });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'SETUP_FAILED', category: 'permanent' });
    expect(run.error?.message).toContain(
      'implementing: The setup command `sh -c echo installing; echo cannot reach the registry >&2; exit 3`',
    );
    expect(run.error?.message).toContain('(setup 1 of 1 in .github/rmapp.yml) exited with 3, so the agent did not run.');
    expect(run.error?.message).toContain('installing\ncannot reach the registry');
    // Analysis and plan only: no implementing agent, no tests; the draft's branch holds the plan's commit only.
    expect(h.linesOf(run.id).map((l) => (l.argv[0] === 'sh' ? 'setup' : 'other'))).toEqual(['other', 'other', 'setup']);
    expect((await h.world.git(h.world.remote, 'rev-list', '--count', 'main..rmapp/issue-1')).trim()).toBe('1');
  });
});
