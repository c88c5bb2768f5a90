/** Plain-text and JSON renderings of runs for the CLI. */
import type { HistoryEvent } from '../../persistence/run-status.ts';
import type { QueuedSignal } from '../../persistence/inbox.ts';
import type { RunInfo } from '../../state_machine/run-info.ts';
import { showBidiControls } from '../server/dashboard/bidi-controls.js';
import { runsCommand } from './shell-word.ts';

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Text safe to print on a terminal: control characters other than newline and tab are shown as `\xNN`.
 * A run's messages quote what the agent and the tests printed (an agent error carries the end of its
 * stderr): an escape sequence there would otherwise reach the operator's terminal, which obeys it (clear
 * the screen, rewrite earlier lines, set the clipboard with OSC 52).
 */
export function terminalSafe(text: string): string {
  // Bidirectional controls are shown by code as the dashboard shows them (the retry command beside a
  // queued signal whose type holds U+202E was reordered on its line).
  return showBidiControls(text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** The JSON form of a run: stable field names, dates as ISO strings. */
export function runToJson(run: RunInfo): Record<string, unknown> {
  return {
    id: run.id,
    workflow: run.workflow,
    workflowVersion: run.workflowVersion,
    status: run.status,
    statusMessage: run.statusMessage,
    state: run.state,
    input: run.input,
    output: run.output,
    error: run.error,
    parentRunId: run.parentRunId,
    children: run.children,
    queue: run.queue ?? null,
    wakeAt: run.wakeAt?.toISOString() ?? null,
    createdAt: run.createdAt.toISOString(),
    updatedAt: run.updatedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
  };
}

/** An event's type on one line: one holding a line break or tab is quoted as JSON (it would forge a line of its own). */
const eventType = (type: string) => (/[\n\r\t\u2028\u2029]/.test(type) ? JSON.stringify(type) : type);

const stateText = (state: unknown) => (typeof state === 'string' ? state : state == null ? '-' : JSON.stringify(state));

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One line per run. */
export function formatRunList(runs: RunInfo[]): string {
  if (runs.length === 0) return 'No runs.';
  return terminalSafe(
    table([
      ['ID', 'WORKFLOW', 'STATUS', 'STATE', 'UPDATED'],
      ...runs.map((r) => [r.id, r.workflow, r.status, stateText(r.state), r.updatedAt.toISOString()]),
    ]),
  );
}

/** A run with its children, error and history; a failed run's queued signals when given. */
export function formatRunDetails(run: RunInfo, history: HistoryEvent[], queued?: { signals: QueuedSignal[]; more: boolean }): string {
  const lines = [
    `Run       ${run.id}`,
    `Workflow  ${run.workflow}@${run.workflowVersion}`,
    `Status    ${run.status}${run.statusMessage ? ` — ${run.statusMessage}` : ''}`,
    `State     ${stateText(run.state)}`,
    `Created   ${run.createdAt.toISOString()}`,
    `Updated   ${run.updatedAt.toISOString()}`,
  ];
  if (run.wakeAt && run.status === 'waiting') lines.push(`Wakes     ${run.wakeAt.toISOString()}`);
  if (run.output != null) lines.push(`Output    ${JSON.stringify(run.output)}`);
  if (run.error) lines.push(`Error     [${run.error.category}] ${run.error.code}: ${run.error.message}`);
  const signal = run.error?.signal;
  if (signal && run.status === 'failed') {
    lines.push(
      `Signal    #${signal.id} ${eventType(signal.type)} — failed handling it; retry without it: ${runsCommand('retry', run.id, { options: '--drop-signal' })}`,
    );
  }
  if (queued && queued.signals.length > 0) {
    const list = queued.signals.map((q) => `#${q.id} ${eventType(q.type)}`).join(', ');
    lines.push(`Queued    ${list}${queued.more ? ', …' : ''} — delivered after a retry`);
    // No signal named, yet one of these may be what failed it (a state it made cannot be written).
    if (!signal) lines.push(`          to leave one out: ${runsCommand('retry', run.id, { options: '--drop-signal <signal-id>' })}`);
  }
  if (run.children.length) {
    lines.push('Children');
    for (const c of run.children) lines.push(`  ${c.path}  ${c.src}  ${c.status}${c.state !== undefined ? `  ${stateText(c.state)}` : ''}`);
  }
  if (history.length) {
    lines.push('History');
    for (const h of history) {
      const what = [h.type, h.path || null, h.step, h.attempt != null ? `#${h.attempt}` : null, h.state != null ? stateText(h.state) : null]
        .filter(Boolean)
        .join(' ');
      const data = h.data as { error?: { category?: string; message?: string }; event?: { type?: unknown } } | null;
      const err = data?.error;
      // A signal's entry names its event (`signal.dropped approve`).
      const event = h.type.startsWith('signal.') && typeof data?.event?.type === 'string' ? ` ${eventType(data.event.type)}` : '';
      // An entry's error as stored: one written by another version may lack a category or a message.
      const said = err ? `  ${typeof err.category === 'string' ? `[${err.category}] ` : ''}${String(err.message ?? '')}`.trimEnd() : '';
      lines.push(`  ${h.at.toISOString()}  ${what}${event}${said}`);
    }
  }
  return terminalSafe(lines.join('\n'));
}
