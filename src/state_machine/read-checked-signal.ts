/**
 * An abort signal that looks at the clock when it is read. A process paused past its lease (a stop, a
 * suspended machine, a blocked event loop) wakes with the timers of the work it runs due before the
 * timer that would abort that work's signal: read by that work, the signal said it was still safe to
 * go on beside the lease's next holder (test/a3-stopped-cleanup-signal.test.ts,
 * test/a3-session-cleanup-fence.test.ts). A step's start looks at its lease itself (run-session.ts
 * `ownsRun`); a definition's cleanup has only its signal.
 */

/**
 * `signal`, with `check` run first whenever it is read (`aborted`, `reason`, `throwIfAborted`): `check`
 * may abort it then, before the caller sees it, rather than when a timer of its own gets to run.
 */
export function checkedOnRead(signal: AbortSignal, check: () => void): AbortSignal {
  const proto = AbortSignal.prototype;
  const aborted = Object.getOwnPropertyDescriptor(proto, 'aborted')?.get;
  const reason = Object.getOwnPropertyDescriptor(proto, 'reason')?.get;
  if (!aborted || !reason) return signal;
  Object.defineProperties(signal, {
    aborted: { configurable: true, get: () => (check(), aborted.call(signal) as boolean) },
    reason: { configurable: true, get: () => (check(), reason.call(signal) as unknown) },
    throwIfAborted: { configurable: true, writable: true, value: () => (check(), proto.throwIfAborted.call(signal)) },
  });
  return signal;
}
