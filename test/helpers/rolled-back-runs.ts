/**
 * Workflows and readers for tests of a run that ends from its last written state (its live state over
 * `limits.snapshotBytes`: session-signals.ts `endFromLastWritten`): a run that takes notes until its
 * state cannot be written, one that enters a step-running state with a context too large to write, and
 * the inbox and history as the tests read them.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step, type Database, type HistoryEvent } from '../../src/index.ts';

/** The tests' `limits.snapshotBytes`. */
export const SMALL = 4096;

/**
 * `note` appends 1,100 bytes to the context: four are over {@link SMALL}. The first moves the run from
 * `open` to `noted` (a `state.entered` entry); `aside` is taken by no state (a `signal.ignored` one).
 */
export const noteMachine = setup({
  types: {} as { context: { notes: string[] }; events: { type: 'note' } | { type: 'aside' } },
}).createMachine({
  id: 'notes',
  context: { notes: [] },
  initial: 'open',
  states: {
    open: { on: { note: { target: 'noted', actions: assign({ notes: ({ context }) => [...context.notes, 'n'.repeat(1100)] }) } } },
    noted: { on: { note: { actions: assign({ notes: ({ context }) => [...context.notes, 'n'.repeat(1100)] }) } } },
  },
});

/** A workflow of {@link noteMachine}, named `name`. */
export const notesWorkflow = (name: string) =>
  defineWorkflow({ name, version: '1', input: z.object({}).passthrough(), machine: noteMachine });

/**
 * A workflow named `name` whose `go` fills the context past {@link SMALL} and enters `working`, which
 * runs a step; each execution of the step is pushed onto `ledger` (kept outside the engine).
 */
export function stepWorkflow(name: string, ledger: string[]) {
  return defineWorkflow({
    name,
    version: '1',
    input: z.object({}).passthrough(),
    machine: setup({
      types: {} as { context: { pad: string }; events: { type: 'go' } },
      actors: {
        work: step(async () => {
          ledger.push('work');
          return 'done';
        }),
      },
    }).createMachine({
      id: 'worker',
      context: { pad: '' },
      initial: 'idle',
      states: {
        idle: { on: { go: { target: 'working', actions: assign({ pad: () => 'p'.repeat(SMALL * 2) }) } } },
        working: { invoke: { src: 'work', onDone: 'idle' } },
      },
    }),
  });
}

/** A row of a run's inbox as the tests read it. */
export interface InboxRow {
  id: number;
  type: string;
  consumed: boolean;
  outcome: string | null;
  dedupe_key: string | null;
}

/** The run's inbox rows, oldest first, read from the table itself. */
export async function inboxRows(db: Database, id: string): Promise<InboxRow[]> {
  return db.query<InboxRow>(
    `select id::float8 as id, event->>'type' as type, consumed_at is not null as consumed, outcome, dedupe_key
     from rmapp_run_inbox where run_id = $1 order by id`,
    [id],
  );
}

/** The history's signal entries as [type, signal id]. */
export const signalEntries = (history: HistoryEvent[]) =>
  history.filter((h) => h.type.startsWith('signal.')).map((h) => [h.type, (h.data as { id: number }).id]);
