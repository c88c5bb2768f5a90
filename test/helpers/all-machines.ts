/**
 * Every workflow machine rmapp registers anywhere, with what a model-based test needs to explore it:
 * the service's registry (`githubWorkflows`: every issue template, PRReview, ReviewResponse,
 * GitHubDelivery), the built-in registry (`rmapp worker` without `--workflows`) and the engine's own
 * test workflows. The lists are read from those registries, not copied, so a machine added to any of
 * them is covered by test/model-based.test.ts and the snapshot fixtures with no new test; if it needs
 * an input or step outputs, the test fails and names it, and its entry goes in `PATH_OPTIONS` below.
 *
 * Steps do not matter here (the path kit scripts them): the service registry is built with dummy
 * dependencies, which its steps only use when they run.
 */
import type { WorkflowDefinition } from '../../src/index.ts';
import type { ModelPathOptions } from '../../src/state_machine/testing/paths.ts';
import { ERROR_CATEGORIES } from '../../src/state_machine/errors.ts';
import { githubWorkflows, type GitHubWorkflowDeps } from '../../src/rmapp/workflows/github-workflows.ts';
import { workflows as builtIn } from '../../src/rmapp/workflows/registry.ts';
import { workflows as engineTestWorkflows } from '../fixtures/test-workflows.ts';

/** One machine to model-test. */
export interface MachineModel {
  def: WorkflowDefinition<any>;
  origin: 'service' | 'built-in' | 'engine test';
  /** Released with the service or the built-in registry: its persisted snapshots are kept as fixtures. */
  released: boolean;
  paths: ModelPathOptions;
  /** Another registered name with the very same machine (covered once, under that name). */
  sameAs?: string;
}

const repo = { owner: 'acme', repo: 'widgets' };
const issueFacts = { title: 'Widgets are slow', body: 'Make them fast.', defaultBranch: 'main' };

/** The steps' outputs, inputs and signals by workflow name; `errorCategories` defaults to every category. */
const PATH_OPTIONS: Record<string, Omit<ModelPathOptions, 'errorCategories'>> = {
  ...Object.fromEntries(
    ['IssueImplementation', 'ComplexFeature', 'BugFix', 'DocsUpdate'].map((name) => [
      name,
      {
        input: { ...repo, issueNumber: 7, requestedBy: 'octocat', maxTestAttempts: 2, approvalTimeoutMs: 3_600_000 },
        events: [{ type: 'approve' }, { type: 'reject' }],
        outputs: {
          analyze: issueFacts,
          plan: { plan: 'tasks:\n  - title: make widgets fast\n' },
          implement: { commit: 'c0ffee1' },
          postPlan: { commentId: 41 },
          createPR: { number: 12, url: 'https://github.test/acme/widgets/pull/12' },
          openDraftPR: { number: 12, url: 'https://github.test/acme/widgets/pull/12' },
          reportFailure: { commentId: 43 },
        },
        outputChoices: {
          test: [
            { passed: true, output: 'all tests pass' },
            { passed: false, output: '1 failing: widgets are slow' },
          ],
        },
      },
    ]),
  ),
  PRReview: { input: { ...repo, pullNumber: 3, commentId: 55 }, outputs: prReviewOutputs() },
  ReviewResponse: {
    input: { ...repo, pullNumber: 3, reviewId: 9 },
    events: [{ type: 'review.comment', commentId: 103 }],
    outputs: { ...prReviewOutputs(), summarize: { commentId: 99 } },
    outputChoices: { listComments: [{ commentIds: [] }, { commentIds: [101] }, { commentIds: [101, 102] }] },
  },
  GitHubDelivery: {
    input: {
      deliveryId: 'delivery-1',
      event: 'issue_comment',
      action: 'created',
      ...repo,
      installationId: null,
      number: 7,
      isPullRequest: false,
      author: 'octocat',
      body: '@rmapp implement',
      commentId: 5,
      reviewId: null,
      label: null,
    },
    outputs: {
      act: { action: 'started', runId: 'acme/widgets/issues/7/1', message: 'Started IssueImplementation.' },
      refuse: { action: 'replied', runId: null, message: 'Only collaborators with write access can do that.' },
    },
    outputChoices: {
      authorize: [
        { allowed: true, permission: 'write' },
        { allowed: false, permission: 'read' },
      ],
    },
  },
  'example.order': {
    input: { orderId: 'A-1', amountCents: 1200, approvalTimeoutMs: 60_000 },
    events: [{ type: 'approve', by: 'octocat' }, { type: 'reject' }],
    outputs: { reserve: { reservation: 'res-1' }, charge: { receipt: 'rcpt-1', amountCents: 1200 } },
  },
  'test.sequence': { input: {}, outputs: { add: 1 } },
  'test.fails': { input: {} },
  'test.flaky': { input: {}, outputs: { flaky: 'flaky' } },
  'test.flaky-slow': { input: {}, outputs: { flaky: 'flaky' } },
  'test.timer': { input: { delayMs: 1_000 }, outputs: { mark: 'mark' } },
  'test.approval': {
    input: { timeoutMs: 60_000 },
    events: [{ type: 'approve', by: 'octocat' }, { type: 'reject' }],
    outputs: { work: 'work' },
  },
  'test.hanging': { input: {}, outputs: { hang: 'hang' } },
  'test.parent': { input: {}, outputs: { childWork: 'child' } },
};

function prReviewOutputs() {
  return {
    parseComment: { request: 'rename x to count', path: 'src/a.ts', line: 3, author: 'octocat', branch: 'feature' },
    locateCode: { snippet: 'const x = 1;' },
    generateFix: { summary: 'Renamed x to count.' },
    testChange: { passed: true, result: 'pass' },
    applyChanges: { commit: 'beef001' },
    respond: { replyId: 77 },
    reportFailure: { replyId: 78 },
  };
}

/** The service's registry as `rmapp serve` builds it; the dependencies are only touched when a step runs. */
function serviceRegistry() {
  const unused = new Proxy(
    {},
    {
      get: (_t, name) => {
        throw new Error(`all-machines: a step dependency (${String(name)}) was used while building the registry`);
      },
    },
  );
  const deps = {
    github: unused,
    workspaces: unused,
    remoteUrl: () => 'unused',
    agent: unused,
    tests: unused,
    botName: 'rmapp',
    labels: {},
    maxTestAttempts: 3,
  } as unknown as GitHubWorkflowDeps;
  return githubWorkflows(deps);
}

function serviceWorkflows(): WorkflowDefinition<any>[] {
  return serviceRegistry().workflows;
}

/** Every machine, once per name; machines shared by two names are marked {@link MachineModel.sameAs}. */
export function allMachines(): MachineModel[] {
  const sources: [MachineModel['origin'], readonly WorkflowDefinition<any>[]][] = [
    ['service', serviceWorkflows()],
    ['built-in', builtIn],
    // `test.spawns` has no step and children that never end: nothing for the path kit to explore; its
    // restores are tested in test/unnamed-spawns-restore.test.ts.
    ['engine test', engineTestWorkflows.filter((w) => w.name !== 'test.spawns')],
  ];
  const out: MachineModel[] = [];
  const byVersion = new Map<string, string>();
  const names = new Set<string>();
  for (const [origin, defs] of sources) {
    for (const def of defs) {
      if (names.has(def.name)) continue;
      names.add(def.name);
      const options = PATH_OPTIONS[def.name] ?? { input: {} };
      const sameAs = byVersion.get(def.version);
      byVersion.set(def.version, sameAs ?? def.name);
      out.push({
        def,
        origin,
        released: origin !== 'engine test',
        paths: { errorCategories: ERROR_CATEGORIES, ...options },
        ...(sameAs ? { sameAs } : {}),
      });
    }
  }
  return out;
}

/**
 * Released versions that are no longer current but whose runs must still finish: the engine's
 * `previousVersions`. When a released machine changes, put its old definition here (and keep its
 * fixture); drop it once `rmapp versions check` shows no run on it.
 */
export const previousVersions: WorkflowDefinition<any>[] = [...serviceRegistry().previousVersions];
