/**
 * Live progress of a run for `rmapp start --wait` and `rmapp runs watch`: the run's history, read from
 * the database as it grows, printed one line per event in the style of `rmapp run` (`→ state`,
 * `  step (attempt n)…`, `  · message`). Reading the history rather than listening to the engine's
 * events is what lets `runs watch` follow a run that another process is executing. The lines are
 * terminal-safe (control characters and bidirectional controls shown as codes); masking is the printer's.
 */
import type { HistoryEvent } from '../../persistence/run-status.ts';
import type { RunInfo } from '../../state_machine/run-info.ts';
import { isFinalStatus } from '../../persistence/run-status.ts';
import { terminalSafe } from './format.ts';

const stateText = (state: unknown) => (typeof state === 'string' ? state : JSON.stringify(state));
const errorOf = (h: HistoryEvent) => (h.data as { error?: { category?: string; message?: string } } | null)?.error;

/** One human line for a history event, or null for bookkeeping events not worth a line. */
export function progressLine(h: HistoryEvent): string | null {
  const at = h.path ? ` [${h.path}]` : '';
  const err = errorOf(h);
  switch (h.type) {
    case 'run.started':
    case 'run.resumed':
    case 'run.retried':
      return `${h.type.replace('run.', '')}`;
    case 'state.entered':
      return `→ ${stateText(h.state)}${at}`;
    case 'step.started':
    case 'step.resumed':
      return `  ${h.step} (attempt ${h.attempt})${h.type === 'step.resumed' ? ', resumed' : ''}…`;
    case 'step.succeeded':
      return `  ${h.step} done`;
    case 'step.retrying':
      return `  ${h.step} failed (${err?.category}: ${err?.message}); retrying in ${(h.data as { delayMs?: number }).delayMs} ms`;
    case 'step.failed':
      return `  ${h.step} failed: ${err?.category}: ${err?.message}`;
    case 'step.postponed':
      return `  ${h.step} (attempt ${h.attempt}) left to the next worker: this one is stopping`;
    case 'step.sleeping':
      return `  ${h.step} sleeping until ${(h.data as { until?: string }).until}`;
    case 'progress':
      return `  · ${(h.data as { message?: string }).message}`;
    case 'signal.received':
      return `  ← ${(h.data as { event?: { type?: string } }).event?.type ?? 'event'}`;
    case 'state.unwritable':
      return `  ✕ its state could not be written (${err?.category}: ${err?.message}); it ends from its last state written`;
    case 'signal.dropped':
      return `  ✕ ${(h.data as { event?: { type?: string } }).event?.type ?? 'event'} dropped: the run failed handling it`;
    default:
      return null;
  }
}

/** What {@link followRun} reads through: an engine, or anything that can read a run and its history. */
export interface RunReader {
  get(runId: string): Promise<RunInfo>;
  history(runId: string): Promise<HistoryEvent[]>;
}

/**
 * Prints the history of `runId` as it grows (`json`: one JSON object per event) until the run reaches
 * a final status, then returns it. `signal` stops following early (the run is returned as it stands).
 */
export async function followRun(
  reader: RunReader,
  runId: string,
  out: (line: string) => void,
  options: {
    json?: boolean | undefined;
    pollMs?: number | undefined;
    signal?: AbortSignal | undefined;
    /** Called with the run each time its status is read to have changed (the first read included). */
    onStatus?: ((run: RunInfo) => void) | undefined;
    /**
     * Masks a line before it is made terminal-safe (the CLI's masker). Masked after, as `out` does, a
     * secret split by colour codes in a step's error (an agent's stderr) was printed in the clear: the
     * masker finds it by its letters and digits, and the `\xNN` that `terminalSafe` writes for each code
     * came between them (test/h7-follow-run-mask.test.ts). `runs show` masks first too.
     */
    mask?: ((text: string) => string) | undefined;
  } = {},
): Promise<RunInfo> {
  let seen = 0;
  let status: string | null = null;
  for (;;) {
    // The run first, then its history: a final status read here has all its history committed.
    const run = await reader.get(runId);
    for (const h of await reader.history(runId)) {
      if (h.seq <= seen) continue;
      seen = h.seq;
      if (options.json)
        out(
          JSON.stringify({
            event: h.type,
            path: h.path,
            state: h.state,
            step: h.step,
            attempt: h.attempt,
            data: h.data,
            at: h.at.toISOString(),
          }),
        );
      else {
        // Terminal-safe as `runs show` prints the same entries (format.ts): a step's error, a progress
        // message and a state.unwritable entry's message quote untrusted text (an agent's stderr, a
        // state's value), whose escape sequences the terminal would obey.
        const line = progressLine(h);
        if (line !== null) out(terminalSafe(options.mask ? options.mask(line) : line));
      }
    }
    // After the lines of the history that led there.
    if (run.status !== status) {
      status = run.status;
      options.onStatus?.(run);
    }
    if (isFinalStatus(run.status) || options.signal?.aborted) return run;
    // The abort listener is taken off after each wait: one added per poll piled up (Node warned past ten).
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      }, options.pollMs ?? 250);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
