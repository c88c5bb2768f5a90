/**
 * One conformance case (issue 15): a machine taken from XState's own tests (`packages/core/test/` of
 * statelyai/xstate, named in `from`), the steps to drive it, and what is compared after every step:
 * state value, context, status, output and children (ids, and each child's status, state value,
 * context and output, nested). Plain XState and rmapp are run on the real clock; a step is an event
 * or a wait (for delays and actors that take time).
 */
import { createActor, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, type Database, type WorkflowDefinition } from '../../src/index.ts';
import { decodeSnapshot } from '../../src/persistence/snapshot-codec.ts';

/** An event to send, or a pause that lets delays fire and actors finish. */
export type Step = { type: string; [k: string]: unknown } | { wait: number };

export interface Case {
  /** Short, unique: the workflow is named `conf.<id>`. */
  id: string;
  /** The XState test it comes from: `file.test.ts › test name`. */
  from: string;
  machine: AnyStateMachine;
  steps: Step[];
  /** In the process mode that SIGKILLs the worker between every pair of steps. */
  killBetween?: boolean;
  /**
   * In the process mode that SIGKILLs the worker inside a delay or an in-flight actor: the machine has
   * one pending from its start, and `inside` tells from the persisted row that the kill lands there.
   */
  killInside?: { inside: (row: PersistedRow) => boolean; what: string };
  /**
   * A documented difference once the run was restored mid-way (a new worker, a kill): see
   * docs/xstate-semantics.md, "Resume semantics". In the modes that restore, views after the start are
   * checked with `check` (which states what differs) instead of equality.
   */
  restoreDiffers?: { why: string; check: (got: View, plain: View) => void };
  /**
   * Views not compared (0: after the start, n: after step n) because they are taken while an actor
   * streams values, so the moment of the reading decides what it shows; the next view, at rest, is.
   */
  midStream?: { views: number[]; why: string };
}

/** The row as persisted: the snapshot and the pending delayed events. */
export interface PersistedRow {
  snapshot: PersistedSnapshot | null;
  timers: unknown[] | null;
}

interface PersistedSnapshot {
  value?: unknown;
  context?: unknown;
  status: string;
  output?: unknown;
  children?: Record<string, { snapshot: PersistedSnapshot } | undefined>;
}

export interface ChildView {
  status: string;
  value: unknown;
  context: unknown;
  output: unknown;
  children: Record<string, ChildView>;
}

export interface View {
  state: unknown;
  context: unknown;
  status: string;
  output: unknown;
  children: Record<string, ChildView>;
}

function children(of: PersistedSnapshot['children']): Record<string, ChildView> {
  const out: Record<string, ChildView> = {};
  for (const [id, c] of Object.entries(of ?? {})) {
    if (!c) continue;
    const s = c.snapshot;
    out[id] = {
      status: s.status,
      value: s.value ?? null,
      context: s.context ?? null,
      output: s.output ?? null,
      children: children(s.children),
    };
  }
  return out;
}

/** What is compared, from a persisted snapshot (plain XState's `getPersistedSnapshot()` or rmapp's row). */
export function view(s: PersistedSnapshot): View {
  return JSON.parse(
    JSON.stringify({
      state: s.value ?? null,
      context: s.context ?? null,
      status: s.status,
      output: s.output ?? null,
      children: children(s.children),
    }),
  ) as View;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Plain XState: the view after each step (a step's effects are given 40 ms, a wait its length more). */
export async function runPlain(c: Case): Promise<View[]> {
  const actor = createActor(c.machine);
  actor.subscribe({ error: () => {} });
  actor.start();
  const views: View[] = [];
  await sleep(40);
  views.push(view(actor.getPersistedSnapshot() as PersistedSnapshot));
  for (const step of c.steps) {
    if ('wait' in step) await sleep((step as { wait: number }).wait);
    else actor.send(step);
    await sleep(40);
    views.push(view(actor.getPersistedSnapshot() as PersistedSnapshot));
  }
  actor.stop();
  return views;
}

/** The workflow a case runs as under rmapp, in this process and in worker processes alike. */
// `any` input: the engine takes a list of definitions of different inputs (EngineOptions.workflows).
export function conformanceWorkflow(c: Case): WorkflowDefinition<any> {
  return defineWorkflow({ name: `conf.${c.id}`, machine: c.machine, input: z.object({}).passthrough() });
}

/** The run's row as persisted, with what {@link settle} needs. */
export async function readRow(db: Database, id: string) {
  const [row] = await db.query<PersistedRow & { version: number; status: string; handled: number; epoch: number; wakeDue: boolean }>(
    `select snapshot, timers, version, status, lease_epoch as epoch, (status in ('pending', 'waiting') and wake_at <= now()) as "wakeDue",
       (select count(*)::int from rmapp_run_inbox i where i.run_id = r.id and i.consumed_at is not null) as handled
     from rmapp_runs r where id = $1`,
    [id],
  );
  if (!row) throw new Error(`run ${id} not found`);
  // The row's snapshot in its stored form (src/persistence/snapshot-codec.ts), read as XState wrote it.
  return { ...row, snapshot: decodeSnapshot(row.snapshot) as PersistedRow['snapshot'] };
}

/**
 * Waits until the run has handled `handled` events and is at rest: ended, or with nothing due (not
 * pending, no delayed event, no wake-up) and its row unchanged for 120 ms (a live child — a callback, an
 * observable — keeps it in memory). A run that is running must be held by a lease taken after
 * `minEpoch` (the worker that replaced a stopped or killed one).
 */
export async function settle(db: Database, id: string, handled: number, minEpoch = -1, timeoutMs = 30_000): Promise<void> {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const row = await readRow(db, id);
    if (row.version !== last) since = Date.now();
    last = row.version;
    const ended = ['succeeded', 'failed', 'cancelled'].includes(row.status);
    const due =
      row.status === 'pending' ||
      row.snapshot === null ||
      row.wakeDue ||
      (row.timers ?? []).some((t) => (t as { dueAt: number }).dueAt <= Date.now());
    const held = row.status !== 'running' || row.epoch > minEpoch;
    if (row.handled >= handled && (ended || (!due && held && Date.now() - since >= 120))) return;
    await sleep(25);
  }
  throw new Error(`run ${id} did not settle after ${handled} events`);
}

/** Events among a case's first `n` steps. */
export const eventsIn = (steps: Step[], n: number) => steps.slice(0, n).filter((s) => !('wait' in s)).length;
