/**
 * One progress comment per run on its issue or PR, edited in place: a checklist of the workflow's
 * stages, the current one with its attempt, errors with their category, the PR link when there is
 * one. Updates are coalesced and throttled per run (GitHub's secondary rate limits); the comment is
 * found by its marker, so a run resumed elsewhere keeps editing the same comment.
 */
import { stderrLogger, type Logger } from '../persistence/logger.ts';
import { FINAL_STATUSES } from '../persistence/run-status.ts';
import type { Engine } from '../state_machine/engine.ts';
import { toErrorData, type ErrorData } from '../state_machine/errors.ts';
import type { GitHubOctokit } from './github/client.ts';
import { marker, upsertComment } from './github/writes.ts';
import { pullRequestBody } from './pull-request-text.ts';
import {
  codeSpan,
  detailsSection,
  failureReason,
  fenced,
  formatElapsed,
  HIDDEN_STAGES,
  nextSteps,
  stageLabel,
  workflowLabel,
} from './run-texts.ts';
import { escapeMarkdown, failingTestLine, summarizeTests, testResultLine, type FailingTest, type TestReport } from './test-report.ts';

interface Target {
  owner: string;
  repo: string;
  issueNumber: number;
}

/** One round of the tests, as the test step reported it (`progress` data `tests`). */
export interface TestRound {
  round: number;
  of: number | null;
  passed: boolean;
  failing: FailingTest[];
  failCount: number | null;
}

/** One attempt of the agent, as the implementing step reported it (`progress` data `implemented`). */
export interface AgentAttempt {
  attempt: number;
  files: string[];
  summary: string | null;
}

interface RunView {
  runId: string;
  target: Target;
  workflow: string;
  requestedBy: string | null;
  startedAt: number;
  stages: string[];
  done: Set<string>;
  current: string | null;
  attempt: number;
  retrying: string | null;
  /** What the current stage is doing now; cleared when the stage changes, so it is never stale. */
  status: string | null;
  rounds: TestRound[];
  attempts: AgentAttempt[];
  /** The run's (draft) pull request, once it has one. */
  pr: { number: number; url: string } | null;
  finished: { status: string; error?: ErrorData | undefined; output?: unknown; at: number } | null;
  /** Link to the run's branch, once it has one. */
  branchUrl?: string | null | undefined;
  /** The cleaned summary of the last test run, shown when the run failed. */
  testReport?: TestReport | null | undefined;
  /** The run's page on the dashboard. */
  runUrl?: string | null | undefined;
  /** The plan (rmplan YAML), for the draft pull request's description. */
  plan?: string | null | undefined;
  /** The round of the tests running now (from the test step's progress). */
  testing?: { round: number; of: number | null } | undefined;
  /** The run entered an outcome state (reporting a failure, complete, failed): its steps write the PR's final description. */
  ending?: boolean;
  /**
   * How many of a review's comments were done (ReviewResponse's summary reports it): "Address the
   * comments" is ticked when the run moves on to its summary, which it does whether or not any comment
   * was done — one whose every comment was refused (a pull request rmapp may not push to) showed the
   * stage ticked as if the comments had been addressed.
   */
  addressed?: { done: number; of: number } | undefined;
}

/** Kept here for callers that quote text in a comment; defined with the other texts (run-texts.ts). */
export { codeSpan };

export interface ProgressCommentOptions {
  /** Stages to list, in order, by workflow name (top-level state names); others are shown as they come. */
  stages: Record<string, string[]>;
  /** At most one edit per run per this long; the last state always gets written. Default 2,000 ms. */
  minIntervalMs?: number | undefined;
  /** Web URL of GitHub (https://github.com, or the GHE host) for branch links. */
  webUrl?: string | undefined;
  /** The dashboard's public URL, for a link to the run's page (inside the Details section). */
  dashboardUrl?: string | undefined;
  /** The branch a run works on (e.g. `rmapp/issue-12`), shown as a link once the run is implementing. */
  branchOf?: ((run: { workflow: string; input: unknown }) => string | null) | undefined;
  /** The bot's login, for the "what next" commands. Default `rmapp`. */
  botName?: string | undefined;
  /**
   * Workflows that get no progress comment: PRReview answers in the review thread, and a top-level
   * checklist per review comment is noise. Default `['PRReview']`.
   */
  silent?: readonly string[] | undefined;
  /** The clock, for elapsed times (tests). */
  now?: (() => number) | undefined;
  /**
   * Where a comment GitHub refused is reported (the run goes on; the next edit tries again). The
   * service and `rmapp run` pass their logger (see {@link progressOptions} in service.ts). Default: one
   * line on stderr, not the engine's silent logger: a progress comment that fails must be visible.
   */
  log?: Logger | undefined;
}

/**
 * A write GitHub failed for a reason that passes (a 5xx, a reset, a rate limit, a timeout) is tried
 * again this many times, waiting {@link retryDelay} between tries. The writer is an event listener,
 * not a step: without this, a run whose last event's write failed kept a stale comment ("running for
 * 0s") until a process's start-up catch-up. The Octokit client re-sends edits itself but not a
 * comment's creation (a POST GitHub may have carried out), so the retry lists the comments again and
 * finds it by its marker before making it.
 */
const WRITE_RETRIES = 5;

/** The wait before retry `n` (1-based): the throttle's interval doubled per try, or what GitHub asked for, at most 5 minutes. */
function retryDelay(n: number, minInterval: number, retryAfterMs: number | undefined): number {
  return Math.min(5 * 60_000, Math.max(retryAfterMs ?? 0, Math.max(minInterval, 50) * 2 ** (n - 1)));
}

/** Test output shown in a failed run's details: its last lines, within a size GitHub renders well. */
const TEST_OUTPUT_CHARS = 4_000;

/** The line of a stage: its label and, for the tests, each round. */
function stageLine(view: RunView, stage: string): string[] {
  const active = stage === view.current && !view.finished;
  const addressed = stage === 'addressing' ? view.addressed : undefined;
  const mark = view.done.has(stage) && !active && addressed?.done !== 0 ? 'x' : ' ';
  let label = stageLabel(stage);
  if (addressed && addressed.done < addressed.of)
    label += addressed.done === 0 ? ` — none of ${addressed.of} done` : ` — ${addressed.done} of ${addressed.of} done`;
  const last = view.rounds.at(-1);
  const of = view.testing?.of ?? last?.of ?? null;
  // The round running now: announced by the test step, and not reported back yet.
  const running = active && view.testing && !view.rounds.some((r) => r.round === view.testing?.round) ? view.testing : null;
  if (stage === 'implementing' && active && view.attempt > 1) label += ` — attempt ${view.attempt}${of ? ` of ${of}` : ''}`;
  if (stage === 'testing' && running) label += ` — round ${running.round}${of ? ` of ${of}` : ''}`;
  else if (stage === 'testing' && last) label += ` — round ${last.round}${of ? ` of ${of}` : ''}, ${testResultLine(last)}`;
  if (stage === 'openingDraftPR' && view.pr) label += `: #${view.pr.number}`;
  const lines = [`- [${mark}] ${label}${active ? ' ← in progress' : ''}`];
  if (stage === 'testing') {
    const earlier = running ? view.rounds : view.rounds.slice(0, -1);
    for (const r of earlier) lines.push(`  - round ${r.round}: ${testResultLine(r)}`);
  }
  return lines;
}

/** The stages as a checklist (also the draft pull request's "Progress"). */
function checklist(view: RunView): string[] {
  return view.stages.filter((s) => !HIDDEN_STAGES.has(s)).flatMap((s) => stageLine(view, s));
}

/** Renders the comment body. */
export function renderProgress(view: RunView, options: { botName?: string | undefined; now?: number } = {}): string {
  const now = options.now ?? Date.now();
  const bot = options.botName ?? 'rmapp';
  const elapsed = formatElapsed((view.finished?.at ?? now) - view.startedAt);
  const who = view.requestedBy ? ` for @\u200b${view.requestedBy}` : '';
  const lines = [`**rmapp** is ${workflowLabel(view.workflow)}${who} · ${view.finished ? 'took' : 'running for'} ${elapsed}`, ''];
  lines.push(...checklist(view));
  if (view.retrying && !view.finished) lines.push('', `⏳ ${view.retrying}`);
  else if (view.status && !view.finished) lines.push('', `> ${view.status}`);
  if (view.current === 'awaitingApproval' && !view.finished)
    lines.push('', `⏸ Waiting for a maintainer to comment \`@${bot} approve\` (or \`@${bot} reject\`) on the plan above.`);
  if (view.pr) lines.push('', `Pull request: ${view.pr.url}${view.finished?.status === 'succeeded' ? '' : ' (draft)'}`);
  else if (view.branchUrl) lines.push('', `Branch: ${view.branchUrl}`);
  if (view.finished) lines.push('', ...outcome(view, bot));
  const details = [`- run: ${view.runUrl ? `[${view.runId}](${view.runUrl})` : `\`${view.runId}\``}`];
  const error = view.finished?.error;
  if (error) details.push(`- error: \`${error.category}\`${error.code ? ` \`${error.code}\`` : ''} ${codeSpan(error.message)}`);
  if (view.finished?.status === 'failed' && view.testReport?.tail) {
    const tail =
      view.testReport.tail.length > TEST_OUTPUT_CHARS ? `…${view.testReport.tail.slice(-TEST_OUTPUT_CHARS)}` : view.testReport.tail;
    details.push('', 'Last lines of the test output:', '', fenced(tail));
  }
  // The agent's session (its transcript, live) is on the run's page, under "Step logs".
  if (view.runUrl) details.push(`- agent session: ${view.runUrl}#logs`);
  lines.push('', ...detailsSection('Details', details));
  return lines.join('\n');
}

/** The end of a finished run's comment: done, or why it stopped, what each attempt did, and what next. */
function outcome(view: RunView, bot: string): string[] {
  const f = view.finished as NonNullable<RunView['finished']>;
  if (f.status === 'succeeded') {
    const pr = (f.output as { pr?: { url?: string } } | undefined)?.pr?.url ?? view.pr?.url;
    return [`✅ Done.${pr ? ` The pull request is ready for review: ${pr}` : ''}`];
  }
  const out = [
    `❌ **Stopped${view.current && !HIDDEN_STAGES.has(view.current) ? ` at “${stageLabel(view.current)}”` : ''}:** ${failureReason(f.error)}.`,
  ];
  const failing = view.testReport?.failing ?? view.rounds.at(-1)?.failing ?? [];
  if (failing.length) out.push('', 'Failing tests:', ...failing.map((t) => `- ${failingTestLine(t)}`));
  if (view.attempts.length) {
    out.push('', 'What each attempt did:');
    for (const a of view.attempts) {
      const round = view.rounds.find((r) => r.round === a.attempt);
      const changed = a.files.length
        ? `changed ${a.files
            .slice(0, 5)
            .map((x) => `\`${x.replaceAll('`', '')}\``)
            .join(', ')}${a.files.length > 5 ? ` and ${a.files.length - 5} more` : ''}`
        : 'changed nothing';
      const said = a.summary ? ` (“${escapeMarkdown(a.summary.replace(/\s+/g, ' ').slice(0, 160))}”)` : '';
      out.push(`- Attempt ${a.attempt}: ${changed}${said}${round ? `; tests: ${testResultLine(round)}` : ''}`);
    }
  }
  out.push('', `**What next:** ${nextSteps(f.error, bot, templateOf(view.workflow))}`);
  return out;
}

function templateOf(workflow: string): string {
  return { ComplexFeature: 'feature', BugFix: 'bugfix', DocsUpdate: 'docs' }[workflow] ?? '';
}

/** Steps that push the run's branch: after one, the branch is worth a link. */
function pushes(step: string | null | undefined): boolean {
  return step === 'implement' || step === 'applyChanges' || step === 'openDraftPR';
}

/**
 * The run entered a top-level state: the one before it is done when the run moved forward; when it
 * went back (the tests failed, so implementing again), the stages from there on are not done any more.
 */
function enter(v: RunView, state: string): void {
  // `failed`, `complete` and the failure report are outcomes, not stages: the stage that stopped stays current.
  if (HIDDEN_STAGES.has(state)) {
    v.ending = true;
    return;
  }
  if (!v.stages.includes(state)) v.stages.push(state);
  if (v.current && v.current !== state) {
    if (v.stages.indexOf(state) > v.stages.indexOf(v.current)) v.done.add(v.current);
    else for (const s of v.stages.slice(v.stages.indexOf(state))) v.done.delete(s);
  }
  v.current = state;
  v.retrying = null;
  v.status = null;
}

/** What a step reported through `progress`: a status line, and the structured facts the comment shows. */
function report(v: RunView, message: string, data: Record<string, unknown> | null | undefined): void {
  v.status = message;
  const testing = data?.testing as { round?: unknown; of?: unknown } | undefined;
  if (testing && typeof testing.round === 'number')
    v.testing = { round: testing.round, of: typeof testing.of === 'number' ? testing.of : null };
  const tests = data?.tests as Partial<TestRound> | undefined;
  if (tests && typeof tests.round === 'number') {
    v.rounds = [
      ...v.rounds.filter((r) => r.round !== tests.round),
      {
        round: tests.round,
        of: tests.of ?? null,
        passed: !!tests.passed,
        failing: tests.failing ?? [],
        failCount: tests.failCount ?? null,
      },
    ];
  }
  const implemented = data?.implemented as Partial<AgentAttempt> | undefined;
  if (implemented && typeof implemented.attempt === 'number')
    v.attempts = [
      ...v.attempts.filter((a) => a.attempt !== implemented.attempt),
      {
        attempt: implemented.attempt,
        files: implemented.files ?? [],
        summary: implemented.summary ?? null,
      },
    ];
  const pr = data?.pullRequest as { number?: unknown; url?: unknown } | undefined;
  if (pr && typeof pr.number === 'number' && typeof pr.url === 'string') v.pr = { number: pr.number, url: pr.url };
  const addressed = data?.addressed as { done?: unknown; of?: unknown } | undefined;
  if (addressed && typeof addressed.done === 'number' && typeof addressed.of === 'number')
    v.addressed = { done: addressed.done, of: addressed.of };
}

/**
 * The summary of a run's last test run: the `test-report` artifact the test step saves (paths already
 * stripped), or, for a run tested before reports existed, its raw `test-output` summarised here.
 */
async function lastTestReport(engine: Engine, runId: string): Promise<TestReport | null> {
  const saved = await engine.getArtifact<TestReport>(runId, 'test-report').catch(() => undefined);
  if (saved && typeof saved === 'object') return saved;
  const raw = await engine.getArtifact<string>(runId, 'test-output').catch(() => undefined);
  return typeof raw === 'string' ? summarizeTests(raw, { passed: false, runId }) : null;
}

/** The handle {@link attachProgressComments} returns. */
export interface ProgressComments {
  stop(): void;
  flush(): Promise<void>;
  catchUp(options?: { withinMs?: number; limit?: number }): Promise<void>;
  /**
   * The runs whose view this process holds now. A view lives while its run works here: it is dropped
   * once the run finishes, waits or is lost and its last edit is written, so a long-lived service holds
   * only its active runs (diagnostics, and the tests that check it).
   */
  heldRuns(): string[];
}

/**
 * Follows the engine's events and keeps each run's progress comment up to date. Returns the handle that
 * stops it. A run's view is built on its first event (from its history, so a run resumed here keeps its
 * ticked stages) and dropped when the run stops working here (finished, waiting, lost).
 */
export function attachProgressComments(engine: Engine, github: GitHubOctokit, options: ProgressCommentOptions): ProgressComments {
  const views = new Map<string, Promise<RunView | null>>();
  const timers = new Map<string, NodeJS.Timeout>();
  const inFlight = new Map<string, Promise<void>>();
  const lastWrite = new Map<string, number>();
  /** Failed writes in a row, per run (reset by a write that succeeds). */
  const failures = new Map<string, number>();
  let stopped = false;
  const branches = new Map<string, string | null>();
  const fetching = new Set<Promise<void>>();
  /** Runs that stopped working here: their view goes once no edit is pending. */
  const closing = new Set<string>();
  const minInterval = options.minIntervalMs ?? 2_000;
  const silent = new Set(options.silent ?? ['PRReview']);
  const now = options.now ?? Date.now;
  const render = (v: RunView) => renderProgress(v, { botName: options.botName, now: now() });
  const log = options.log ?? stderrLogger('rmapp: ');

  const view = (runId: string): Promise<RunView | null> => {
    let v = views.get(runId);
    if (!v) {
      const reading: Promise<RunView | null> = engine.get(runId).then(async (run) => {
        const input = run.input as (Partial<Target> & { pullNumber?: number; requestedBy?: string }) | null;
        const number = input?.issueNumber ?? input?.pullNumber;
        if (!input?.owner || !input.repo || !number) return null; // not an issue or PR run
        if (silent.has(run.workflow)) return null; // answers in its own thread
        const branch = options.branchOf?.(run) ?? null;
        branches.set(runId, branch && options.webUrl ? `${options.webUrl}/${input.owner}/${input.repo}/tree/${branch}` : branch);
        const view: RunView = {
          runId,
          target: { owner: input.owner, repo: input.repo, issueNumber: number },
          runUrl: options.dashboardUrl ? `${options.dashboardUrl.replace(/\/$/, '')}/runs/${encodeURIComponent(runId)}` : null,
          workflow: run.workflow,
          requestedBy: typeof input.requestedBy === 'string' ? input.requestedBy : null,
          startedAt: run.createdAt instanceof Date ? run.createdAt.getTime() : now(),
          stages: [...(options.stages[run.workflow] ?? [])],
          done: new Set<string>(),
          current: null,
          attempt: 1,
          retrying: null,
          status: null,
          rounds: [],
          attempts: [],
          pr: null,
          finished: null,
        };
        // A run this process did not start (resumed after a crash, or another worker's until now):
        // what it did before comes from its history, so finished stages stay ticked.
        for (const h of await engine.history(runId).catch(() => [])) {
          if (h.type === 'state.entered' && h.path === '' && typeof h.state === 'string') enter(view, h.state);
          else if (h.type === 'step.started' && h.attempt) view.attempt = h.attempt;
          else if (h.type === 'step.succeeded' && pushes(h.step)) view.branchUrl = branches.get(runId) ?? null;
          else if (h.type === 'progress' && typeof (h.data as { message?: unknown } | null)?.message === 'string') {
            const d = h.data as { message: string; data?: Record<string, unknown> };
            report(view, d.message, d.data ?? (h.data as Record<string, unknown>));
          }
        }
        return view;
      });
      // The run could not be read (a database blip, a run pruned meanwhile): no edit this time, and no
      // view kept, so the next event of the run reads it again. Events fire and forget their update,
      // so a rejection here would reach nobody and end the process.
      v = reading.catch((err: unknown) => {
        log.warn({ err, runId }, `progress comment of run ${runId}: reading the run failed: ${(err as Error).message}`);
        if (views.get(runId) === v) views.delete(runId);
        return null;
      });
      views.set(runId, v);
    }
    return v;
  };

  /** Drops the view of a run that stopped working here, unless an edit of it is still to be written. */
  const forgetIfIdle = (runId: string) => {
    if (!closing.has(runId) || timers.has(runId) || inFlight.has(runId)) return;
    closing.delete(runId);
    views.delete(runId);
    branches.delete(runId);
    lastWrite.delete(runId);
    failures.delete(runId);
  };

  /**
   * A write failed: try again later if the failure passes and tries are left. A write already
   * scheduled (a newer event) serves as the retry; the pending timer keeps the run's view held.
   */
  const failed = (runId: string, err: unknown) => {
    const error = toErrorData(err);
    const n = (failures.get(runId) ?? 0) + 1;
    const passing = error.category === 'transient' || error.category === 'rate_limited' || error.category === 'timeout';
    const again = passing && n <= WRITE_RETRIES && !stopped;
    failures.set(runId, again ? n : 0);
    const wait = again ? retryDelay(n, minInterval, error.retryAfterMs) : 0;
    log.error(
      { err, runId },
      `progress comment of run ${runId}: ${error.message}${again ? `; trying again in ${Math.round(wait / 1000)} s (${n} of ${WRITE_RETRIES})` : ''}`,
    );
    if (again && !timers.has(runId)) writeIn(runId, wait);
  };

  /** The run's comment is written in `wait` ms (its pending timer keeps its view held). */
  const writeIn = (runId: string, wait: number) => {
    timers.set(
      runId,
      setTimeout(() => {
        timers.delete(runId);
        void write(runId);
      }, wait),
    );
  };

  const write = async (runId: string): Promise<void> => {
    const v = await view(runId);
    if (!v) return;
    const previous = inFlight.get(runId) ?? Promise.resolve();
    const next: Promise<void> = previous
      .then(() =>
        upsertComment(github, { owner: v.target.owner, repo: v.target.repo }, v.target.issueNumber, `${runId}/progress`, render(v)),
      )
      .then(() => updateDraft(v))
      .then(() => void failures.delete(runId))
      .catch((err: unknown) => failed(runId, err))
      .then(() => {
        if (inFlight.get(runId) !== next) return;
        inFlight.delete(runId);
        forgetIfIdle(runId);
      });
    inFlight.set(runId, next);
    lastWrite.set(runId, Date.now());
    await next;
  };

  /**
   * The draft pull request's description follows the stages while the run works. Once the run is
   * marking it ready or reporting a failure, that step writes the final description, so this stops.
   */
  const updateDraft = async (v: RunView): Promise<void> => {
    if (!v.pr || v.finished || v.ending || v.current === 'creatingPR') return;
    v.plan ??= (await engine.getArtifact<string>(v.runId, 'plan').catch(() => undefined)) ?? null;
    const body = pullRequestBody({
      issueNumber: v.target.issueNumber,
      requestedBy: v.requestedBy,
      plan: v.plan ?? '',
      summary: null,
      tests: null,
      status: { phase: 'working', stages: checklist(v).join('\n') },
    });
    const repo = { owner: v.target.owner, repo: v.target.repo };
    const { data } = await github.pulls.get({ ...repo, pull_number: v.pr.number });
    // Ready, or already marked with the reason it stopped (the failure report is written by a step): not ours to edit.
    if (data.state !== 'open' || !data.draft || data.body?.startsWith(body) || data.body?.includes('> rmapp stopped:')) return;
    // The run may have moved on while the description was read: the step writing the final one is then
    // running, and this stale edit would land after it (a failed run's draft read "in progress" for ever).
    if (v.finished || v.ending || v.current === 'creatingPR') return;
    await github.pulls.update({ ...repo, pull_number: v.pr.number, body: `${body}\n\n${marker(`${v.runId}/pull-request`)}` });
  };

  const schedule = (runId: string, now = false) => {
    if (timers.has(runId) && !now) return;
    clearTimeout(timers.get(runId));
    writeIn(runId, now ? 0 : Math.max(0, (lastWrite.get(runId) ?? 0) + minInterval - Date.now()));
  };

  const update = (runId: string, change: (v: RunView) => void, now = false): Promise<void> => {
    closing.delete(runId); // working here again
    return view(runId).then((v) => {
      if (!v) return;
      change(v);
      schedule(runId, now);
    });
  };

  /**
   * The run stopped working here. Chained on its view like every update, so the updates before it are
   * applied (and their edit scheduled) first; the view goes when that edit is written.
   */
  const release = (runId: string): Promise<void> => {
    const held = views.get(runId);
    if (!held) return Promise.resolve(); // nothing to drop: do not read the run just to forget it
    return held.then(() => {
      closing.add(runId);
      forgetIfIdle(runId);
    });
  };

  const offs = [
    engine.on('state.entered', (e) => {
      if (e.path !== '' || typeof e.state !== 'string') return;
      const state = e.state;
      void update(e.runId, (v) => enter(v, state));
    }),
    engine.on('step.started', (e) => void update(e.runId, (v) => void (v.attempt = e.attempt))),
    engine.on('step.succeeded', (e) => {
      if (pushes(e.step)) void update(e.runId, (v) => void (v.branchUrl = branches.get(e.runId) ?? null));
    }),
    engine.on(
      'step.retrying',
      (e) =>
        void update(
          e.runId,
          (v) =>
            void (v.retrying = `${e.step} failed (${e.error.category}: ${codeSpan(e.error.message)}); attempt ${e.attempt + 1} at ${e.nextAttemptAt}`),
        ),
    ),
    engine.on('progress', (e) => void update(e.runId, (v) => report(v, e.message, e.data))),
    engine.on('run.finished', (e) => finished(e)),
    // Evicted to wait (a timer, an approval) or taken by another worker: built again from history if it comes back.
    engine.on('run.waiting', (e) => void release(e.runId)),
    engine.on('run.lost', (e) => void release(e.runId)),
  ];

  /** The run ended: its final comment (a failed run shows the end of its last test output, if it has one). */
  function finished(e: { runId: string; status: string; error?: ErrorData | undefined; output?: unknown }): Promise<void> {
    const output = e.status === 'failed' ? lastTestReport(engine, e.runId) : Promise.resolve(null);
    const pending = output
      .then((testReport) =>
        update(
          e.runId,
          (v) => {
            if (e.status === 'succeeded' && v.current) v.done.add(v.current);
            v.finished = { status: e.status, error: e.error, output: e.output, at: now() };
            v.testReport = testReport;
            v.status = null;
          },
          true,
        ),
      )
      .then(() => release(e.runId));
    fetching.add(pending);
    void pending.finally(() => fetching.delete(pending));
    return pending;
  }

  return {
    /**
     * Writes the final comment of runs that ended recently, as their worker may have died between the
     * run's last commit and its last edit. Called when a process starts; an unchanged comment is not
     * edited (upsertComment compares bodies), so several processes catching up cost reads only.
     */
    async catchUp(options: { withinMs?: number; limit?: number } = {}) {
      const since = Date.now() - (options.withinMs ?? 15 * 60_000);
      const runs = await engine.list({ status: [...FINAL_STATUSES], limit: options.limit ?? 100 });
      for (const run of runs) {
        if (!run.finishedAt || run.finishedAt.getTime() < since || run.parentRunId) continue;
        await finished({ runId: run.id, status: run.status, error: run.error ?? undefined, output: run.output });
      }
    },
    heldRuns() {
      return [...views.keys()];
    },
    stop() {
      stopped = true;
      for (const off of offs) off();
      for (const t of timers.values()) clearTimeout(t);
    },
    /** Writes everything pending now and waits for it (tests, shutdown). */
    async flush() {
      await Promise.all(fetching);
      // Let the view promises of those updates settle before the timers are read.
      await Promise.all(views.values());
      // The timers pending now: a write that fails here schedules its retry, which is not run at once.
      for (const [runId, t] of [...timers]) {
        clearTimeout(t);
        timers.delete(runId);
        await write(runId);
      }
      await Promise.all(inFlight.values());
    },
  };
}
