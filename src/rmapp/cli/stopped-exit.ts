/**
 * After `rmapp serve` or `rmapp worker` has stopped, the process ends within a second even if
 * something is still armed: an aborted step's GitHub request waiting for its retry (1, 4 or 9 s; it
 * would fail at once, github/abortable.ts) kept a stopped service's process alive for ~11 s. The
 * second lets the logger write what is buffered; an unref'd timer does not itself keep the process up.
 */
export function exitSoonAfterStop(): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), 1_000).unref();
}
