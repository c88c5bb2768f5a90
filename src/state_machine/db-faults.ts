/**
 * Injected database faults on the ownership paths — the lease renewal, the claim and the commit — and
 * on the in-place cancellation of a pending run, so a test can make renewals slow, make the database
 * unreachable for longer than a lease, or lose a statement's answer, in a real process. Armed through
 * the environment, read once when this module loads:
 *
 * ```
 * RMAPP_DB_FAULT=<op>:delay:<ms>                       every <op> statement's reply comes <ms> late
 * RMAPP_DB_FAULT=<op>:fail:<from>:<ms>                 from the <from>th <op> on, every <op> fails for <ms>
 * RMAPP_DB_FAULT=<op>:unanswered:<from>:<n>            from the <from>th <op> on, <n> of them are applied
 *                                                      but their reply is lost (a connection broken
 *                                                      during COMMIT: the outcome is unknown)
 * ```
 *
 * `op` is `renew`, `claim`, `commit`, `cancel` (`engine.cancel` of a pending run,
 * state_machine/pending-cancel.ts) or `*` (all of them share one outage window, which opens at the
 * `<from>`th renewal: renewals come at a steady pace, commits and claims in bursts); several specs are
 * separated by commas. A failure is a connection error (category `transient`), as an outage gives.
 *
 * Zero cost when unset: call sites test {@link dbFaultsArmed} (a constant) before anything else.
 *
 * @example
 * // Renewals answer 400 ms late:      RMAPP_DB_FAULT=renew:delay:400 rmapp worker
 * // A 2.5 s outage after 3 renewals:  RMAPP_DB_FAULT=*:fail:3:2500 rmapp worker
 * // A cancel's answer lost once:      RMAPP_DB_FAULT=cancel:unanswered:1:1 rmapp runs cancel <id>
 */

/** The statements a fault can target. */
const DB_FAULT_OPS = ['renew', 'claim', 'commit', 'cancel'] as const;
export type DbFaultOp = (typeof DB_FAULT_OPS)[number];

/** One armed fault. */
export type DbFault =
  | { op: DbFaultOp | '*'; kind: 'delay'; ms: number }
  | { op: DbFaultOp | '*'; kind: 'fail'; from: number; ms: number }
  | { op: DbFaultOp | '*'; kind: 'unanswered'; from: number; count: number };

/** Parses `RMAPP_DB_FAULT`; a malformed value throws at start-up, naming the fix. */
function parseDbFaultSpec(text: string | undefined): DbFault[] {
  if (!text?.trim()) return [];
  return text.split(',').map((part) => {
    const [op, kind, a, b, ...rest] = part.trim().split(':');
    const okOp = op === '*' || DB_FAULT_OPS.includes(op as DbFaultOp);
    const n = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : NaN);
    if (okOp && kind === 'delay' && Number.isFinite(n(a)) && b === undefined) return { op: op as DbFaultOp, kind, ms: n(a) };
    if (okOp && kind === 'fail' && n(a) >= 1 && Number.isFinite(n(b)) && rest.length === 0)
      return { op: op as DbFaultOp, kind, from: n(a), ms: n(b) };
    if (okOp && kind === 'unanswered' && n(a) >= 1 && n(b) >= 1 && rest.length === 0)
      return { op: op as DbFaultOp, kind, from: n(a), count: n(b) };
    throw new Error(
      `RMAPP_DB_FAULT: "${part.trim()}" is not <op>:delay:<ms>, <op>:fail:<from>:<ms> or <op>:unanswered:<from>:<n> with op one of ` +
        `${DB_FAULT_OPS.join(', ')}, * (e.g. RMAPP_DB_FAULT=renew:delay:400, RMAPP_DB_FAULT=*:fail:3:2500 or RMAPP_DB_FAULT=commit:unanswered:10:20).`,
    );
  });
}

/** Counts statements per op and applies the armed faults; a failure window opens at its `from`th call. */
export class DbFaults {
  private readonly calls = new Map<string, number>();
  private readonly windows = new Map<DbFault, number>();

  constructor(
    readonly armed: readonly DbFault[],
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Before an `op` statement: throws while a failure window is open. */
  before(op: DbFaultOp): void {
    const count = (this.calls.get(op) ?? 0) + 1;
    this.calls.set(op, count);
    for (const f of this.armed) {
      if (f.kind !== 'fail' || (f.op !== op && f.op !== '*')) continue;
      const counted = f.op === '*' ? (this.calls.get('renew') ?? 0) : count;
      if (!this.windows.has(f) && counted >= f.from) this.windows.set(f, this.now());
      const opened = this.windows.get(f);
      if (opened !== undefined && this.now() - opened < f.ms) {
        throw Object.assign(new Error(`injected database fault (RMAPP_DB_FAULT) on ${op}`), { code: 'ECONNRESET' });
      }
    }
  }

  /** After an `op` statement was applied: waits out an armed delay, or loses the reply. */
  async after(op: DbFaultOp): Promise<void> {
    const count = this.calls.get(op) ?? 0;
    for (const f of this.armed) {
      if (f.op !== op && f.op !== '*') continue;
      if (f.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
      if (f.kind === 'unanswered' && count >= f.from && count < f.from + f.count) {
        throw Object.assign(new Error(`injected lost reply (RMAPP_DB_FAULT) on ${op}: the statement was applied`), { code: 'ECONNRESET' });
      }
    }
  }
}

const processFaults = new DbFaults(parseDbFaultSpec(process.env.RMAPP_DB_FAULT));

/** True when `RMAPP_DB_FAULT` armed a fault in this process (read once, at start-up). */
export const dbFaultsArmed: boolean = processFaults.armed.length > 0;

/** Runs a statement of `op` through the armed faults (call only when {@link dbFaultsArmed}). */
export async function withDbFault<T>(op: DbFaultOp, statement: () => Promise<T>): Promise<T> {
  processFaults.before(op);
  const result = await statement();
  await processFaults.after(op);
  return result;
}
