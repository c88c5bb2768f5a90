/**
 * One progress comment per run on its issue or PR, edited in place: a checklist of the workflow's
 * stages, the current one with its attempt, errors with their category, the PR link when there is
 * one. Updates are coalesced and throttled per run (GitHub's secondary rate limits); the comment is
 * found by its marker, so a run resumed elsewhere keeps editing the same comment.
 */
import { stderrLogger, type Logger } from '../persistence/logger.ts';
import { FINAL_STATUSES } from '../persistence/run-status.ts';
import type { Engine } from '../state_machine/engine.ts';
import type { ErrorData } from '../state_machine/errors.ts';
import type { GitHubOctokit } from './github/client.ts';
import { upsertComment } from './github/writes.ts';

interface Target {
  owner: string;
  repo: string;
  issueNumber: number;
}

interface RunView {
  target: Target;
  workflow: string;
  stages: string[];
  done: Set<string>;
  current: string | null;
  attempt: number;
  retrying: string | null;
  messages: string[];
  finished: { status: string; error?: ErrorData | undefined; output?: unknown } | null;
  /** Link to the run's branch, once it has one. */
  branchUrl?: string | null | undefined;
  /** The end of the last test run's output, shown when the run failed. */
  testOutput?: string | null | undefined;
  /** The run's page on the dashboard. */
  runUrl?: string | null | undefined;
}

export interface ProgressCommentOptions {
  /** Stages to list, in order, by workflow name (top-level state names); others are shown as they come. */
  stages: Record<string, string[]>;
  /** At most one edit per run per this long; the last state always gets written. Default 2,000 ms. */
  minIntervalMs?: number | undefined;
  /** Web URL of GitHub (https://github.com, or the GHE host) for branch links. */
  webUrl?: string | undefined;
  /** The dashboard's public URL, for a link to the run's page. */
  dashboardUrl?: string | undefined;
  /** The branch a run works on (e.g. `rmapp/issue-12`), shown as a link once the run is implementing. */
  branchOf?: ((run: { workflow: string; input: unknown }) => string | null) | undefined;
  /**
   * Where a comment GitHub refused is reported (the run goes on; the next edit tries again). The
   * service and `rmapp run` pass their logger (see {@link progressOptions} in service.ts). Default: one
   * line on stderr, not the engine's silent logger: a progress comment that fails must be visible.
   */
  log?: Logger | undefined;
}

/** Test output shown in a failed run's comment: its last lines, within a size GitHub renders well. */
const TEST_OUTPUT_CHARS = 6_000;

/**
 * Untrusted text as a Markdown code span: a run's errors quote what the agent and the tests printed
 * (an agent's error carries the end of its stderr), which must not become mentions, links or images in
 * a comment the app posts. The fence is longer than any run of backticks in the text, on one line.
 */
export function codeSpan(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence} ${flat} ${fence}`;
}

/** Renders the comment body. */
export function renderProgress(view: RunView): string {
  const lines = [`**rmapp** · ${view.workflow}`, ''];
  for (const stage of view.stages) {
    const mark = view.done.has(stage) ? 'x' : ' ';
    const now = stage === view.current && !view.finished ? ` ← in progress${view.attempt > 1 ? ` (attempt ${view.attempt})` : ''}` : '';
    lines.push(`- [${mark}] ${stage}${now}`);
  }
  if (view.retrying && !view.finished) lines.push('', `Retrying: ${view.retrying}`);
  if (view.messages.length) lines.push('', `> ${view.messages.at(-1)}`);
  if (view.finished) {
    const pr = (view.finished.output as { pr?: { url?: string } } | undefined)?.pr?.url;
    lines.push('', view.finished.status === 'succeeded' ? `✅ Done${pr ? `: ${pr}` : ''}` : `❌ ${view.finished.status}`);
    if (view.finished.error) lines.push(`\`${view.finished.error.category}\` ${codeSpan(view.finished.error.message)}`);
    if (view.finished.status === 'failed' && view.testOutput) {
      const tail = view.testOutput.length > TEST_OUTPUT_CHARS ? `…${view.testOutput.slice(-TEST_OUTPUT_CHARS)}` : view.testOutput;
      lines.push('', '<details><summary>Last test output</summary>', '', '```', tail.replaceAll('```', '` ` `'), '```', '</details>');
    }
  }
  // The agent's session (its transcript, live) is on the run's page, under "Step logs".
  const links = [
    view.branchUrl ? `branch: ${view.branchUrl}` : null,
    view.runUrl ? `run: ${view.runUrl}` : null,
    view.runUrl ? `agent session: ${view.runUrl}#logs` : null,
  ].filter(Boolean);
  if (links.length) lines.push('', links.join(' · '));
  return lines.join('\n');
}

/** Steps that push the run's branch: after one, the branch is worth a link. */
function pushes(step: string | null | undefined): boolean {
  return step === 'implement' || step === 'applyChanges';
}

/** The run entered a top-level state: the one before it is done. */
function enter(v: RunView, state: string): void {
  if (v.current && v.current !== state) v.done.add(v.current);
  if (!v.stages.includes(state)) v.stages.push(state);
  v.current = state;
  v.retrying = null;
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
  const branches = new Map<string, string | null>();
  const fetching = new Set<Promise<void>>();
  /** Runs that stopped working here: their view goes once no edit is pending. */
  const closing = new Set<string>();
  const minInterval = options.minIntervalMs ?? 2_000;
  const log = options.log ?? stderrLogger('rmapp: ');

  const view = (runId: string): Promise<RunView | null> => {
    let v = views.get(runId);
    if (!v) {
      const reading: Promise<RunView | null> = engine.get(runId).then(async (run) => {
        const input = run.input as (Partial<Target> & { pullNumber?: number }) | null;
        const number = input?.issueNumber ?? input?.pullNumber;
        if (!input?.owner || !input.repo || !number) return null; // not an issue or PR run
        const branch = options.branchOf?.(run) ?? null;
        branches.set(runId, branch && options.webUrl ? `${options.webUrl}/${input.owner}/${input.repo}/tree/${branch}` : branch);
        const view: RunView = {
          target: { owner: input.owner, repo: input.repo, issueNumber: number },
          runUrl: options.dashboardUrl ? `${options.dashboardUrl.replace(/\/$/, '')}/runs/${encodeURIComponent(runId)}` : null,
          workflow: run.workflow,
          stages: [...(options.stages[run.workflow] ?? [])],
          done: new Set<string>(),
          current: null,
          attempt: 1,
          retrying: null,
          messages: [],
          finished: null,
        };
        // A run this process did not start (resumed after a crash, or another worker's until now):
        // what it did before comes from its history, so finished stages stay ticked.
        for (const h of await engine.history(runId).catch(() => [])) {
          if (h.type === 'state.entered' && h.path === '' && typeof h.state === 'string') enter(view, h.state);
          else if (h.type === 'step.started' && h.attempt) view.attempt = h.attempt;
          else if (h.type === 'step.succeeded' && pushes(h.step)) view.branchUrl = branches.get(runId) ?? null;
          else if (h.type === 'progress' && typeof (h.data as { message?: unknown } | null)?.message === 'string')
            view.messages.push((h.data as { message: string }).message);
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
  };

  const write = async (runId: string): Promise<void> => {
    const v = await view(runId);
    if (!v) return;
    const previous = inFlight.get(runId) ?? Promise.resolve();
    const next: Promise<void> = previous
      .then(() =>
        upsertComment(github, { owner: v.target.owner, repo: v.target.repo }, v.target.issueNumber, `${runId}/progress`, renderProgress(v)),
      )
      .then(() => undefined)
      .catch((err: unknown) => log.error({ err, runId }, `progress comment of run ${runId}: ${(err as Error).message}`))
      .then(() => {
        if (inFlight.get(runId) !== next) return;
        inFlight.delete(runId);
        forgetIfIdle(runId);
      });
    inFlight.set(runId, next);
    lastWrite.set(runId, Date.now());
    await next;
  };

  const schedule = (runId: string, now = false) => {
    if (timers.has(runId) && !now) return;
    clearTimeout(timers.get(runId));
    const wait = now ? 0 : Math.max(0, (lastWrite.get(runId) ?? 0) + minInterval - Date.now());
    timers.set(
      runId,
      setTimeout(() => {
        timers.delete(runId);
        void write(runId);
      }, wait),
    );
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
    engine.on('progress', (e) => void update(e.runId, (v) => void v.messages.push(e.message))),
    engine.on('run.finished', (e) => finished(e)),
    // Evicted to wait (a timer, an approval) or taken by another worker: built again from history if it comes back.
    engine.on('run.waiting', (e) => void release(e.runId)),
    engine.on('run.lost', (e) => void release(e.runId)),
  ];

  /** The run ended: its final comment (a failed run shows the end of its last test output, if it has one). */
  function finished(e: { runId: string; status: string; error?: ErrorData | undefined; output?: unknown }): Promise<void> {
    const output =
      e.status === 'failed' ? engine.getArtifact<string>(e.runId, 'test-output').catch(() => undefined) : Promise.resolve(undefined);
    const pending = output
      .then((testOutput) =>
        update(
          e.runId,
          (v) => {
            if (e.status === 'succeeded' && v.current) v.done.add(v.current);
            v.finished = { status: e.status, error: e.error, output: e.output };
            v.testOutput = typeof testOutput === 'string' ? testOutput : null;
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
      for (const off of offs) off();
      for (const t of timers.values()) clearTimeout(t);
    },
    /** Writes everything pending now and waits for it (tests, shutdown). */
    async flush() {
      await Promise.all(fetching);
      // Let the view promises of those updates settle before the timers are read.
      await Promise.all(views.values());
      for (const [runId, t] of timers) {
        clearTimeout(t);
        timers.delete(runId);
        await write(runId);
      }
      await Promise.all(inFlight.values());
    },
  };
}
