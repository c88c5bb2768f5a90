/**
 * One progress comment per run on its issue or PR, edited in place: a checklist of the workflow's
 * stages, the current one with its attempt, errors with their category, the PR link when there is
 * one. Updates are coalesced and throttled per run (GitHub's secondary rate limits); the comment is
 * found by its marker, so a run resumed elsewhere keeps editing the same comment.
 */
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
}

export interface ProgressCommentOptions {
  /** Stages to list, in order, by workflow name (top-level state names); others are shown as they come. */
  stages: Record<string, string[]>;
  /** At most one edit per run per this long; the last state always gets written. Default 2,000 ms. */
  minIntervalMs?: number;
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
    if (view.finished.error) lines.push(`\`${view.finished.error.category}\` ${view.finished.error.message}`);
  }
  return lines.join('\n');
}

/** Follows the engine's events and keeps each run's progress comment up to date. Returns a stop function. */
export function attachProgressComments(engine: Engine, github: GitHubOctokit, options: ProgressCommentOptions): { stop(): void; flush(): Promise<void> } {
  const views = new Map<string, Promise<RunView | null>>();
  const timers = new Map<string, NodeJS.Timeout>();
  const inFlight = new Map<string, Promise<void>>();
  const lastWrite = new Map<string, number>();
  const minInterval = options.minIntervalMs ?? 2_000;

  const view = (runId: string): Promise<RunView | null> => {
    let v = views.get(runId);
    if (!v) {
      v = engine.get(runId).then((run) => {
        const input = run.input as Partial<Target> | null;
        if (!input?.owner || !input.repo || !input.issueNumber) return null; // not a GitHub run
        return {
          target: { owner: input.owner, repo: input.repo, issueNumber: input.issueNumber },
          workflow: run.workflow,
          stages: [...(options.stages[run.workflow] ?? [])],
          done: new Set<string>(),
          current: null,
          attempt: 1,
          retrying: null,
          messages: [],
          finished: null,
        };
      });
      views.set(runId, v);
    }
    return v;
  };

  const write = async (runId: string): Promise<void> => {
    const v = await view(runId);
    if (!v) return;
    const previous = inFlight.get(runId) ?? Promise.resolve();
    const next = previous
      .then(() => upsertComment(github, { owner: v.target.owner, repo: v.target.repo }, v.target.issueNumber, `${runId}/progress`, renderProgress(v)))
      .then(() => undefined)
      .catch((err: unknown) => console.error(`rmapp: progress comment of run ${runId}: ${(err as Error).message}`));
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

  const update = (runId: string, change: (v: RunView) => void, now = false) => {
    void view(runId).then((v) => {
      if (!v) return;
      change(v);
      schedule(runId, now);
    });
  };

  const offs = [
    engine.on('state.entered', (e) => {
      if (e.path !== '' || typeof e.state !== 'string') return;
      const state = e.state;
      update(e.runId, (v) => {
        if (v.current && v.current !== state) v.done.add(v.current);
        if (!v.stages.includes(state)) v.stages.push(state);
        v.current = state;
        v.retrying = null;
      });
    }),
    engine.on('step.started', (e) => update(e.runId, (v) => void (v.attempt = e.attempt))),
    engine.on('step.retrying', (e) => update(e.runId, (v) => void (v.retrying = `${e.step} failed (${e.error.category}: ${e.error.message}); attempt ${e.attempt + 1} at ${e.nextAttemptAt}`))),
    engine.on('progress', (e) => update(e.runId, (v) => void v.messages.push(e.message))),
    engine.on('run.finished', (e) =>
      update(
        e.runId,
        (v) => {
          if (e.status === 'succeeded' && v.current) v.done.add(v.current);
          v.finished = { status: e.status, error: e.error, output: e.output };
        },
        true,
      ),
    ),
  ];

  return {
    stop() {
      for (const off of offs) off();
      for (const t of timers.values()) clearTimeout(t);
    },
    /** Writes everything pending now and waits for it (tests, shutdown). */
    async flush() {
      for (const [runId, t] of timers) {
        clearTimeout(t);
        timers.delete(runId);
        await write(runId);
      }
      await Promise.all(inFlight.values());
    },
  };
}
