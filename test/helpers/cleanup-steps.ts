/**
 * Reading the ledger the cleanup of test/fixtures/a3-fenced-cleanup.ts writes (one JSON line per step it
 * takes, by process), for the tests that stop or cut off a worker while it cleans up.
 */
import { readJsonLines } from './ledger.ts';

/** A line of the ledger: a step of the cleanup of `runId` in process `pid`, its stop, or its end. */
export interface CleanupEntry {
  runId: string;
  pid: number;
  phase: 'step' | 'stopped' | 'end';
  step: number;
}

/** The ledger's lines, in order (none while it does not exist). */
export const cleanupEntries = (ledger: string): CleanupEntry[] => readJsonLines<CleanupEntry>(ledger);

/**
 * The cleanup steps process `pid` took after process `later` wrote its first line: once `later` took
 * the cleanup over, `pid`'s signal should have stopped it, so there must be none.
 */
export function stepsAfterTakeOver(ledger: string, pid: number, later: number): CleanupEntry[] {
  const entries = cleanupEntries(ledger);
  const from = entries.findIndex((e) => e.pid === later);
  return entries.slice(from + 1).filter((e) => e.pid === pid && e.phase === 'step');
}
