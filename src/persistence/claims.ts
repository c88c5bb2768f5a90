/**
 * Claiming runs and holding their leases. One `wake_at` column says when a run next needs a worker:
 * its creation for a pending run, its timer for a waiting one, its lease expiry for a running one.
 * So "runnable" is a partial-index range scan in `wake_at` order: `wake_at <= now()`.
 *
 * A worker's definitions are matched as one text key per row (`workflow<US>version = any($1)`), a
 * filter on that ordered scan, which stops at the limit. A semi-join against the list (what this
 * was) made Postgres read every due run, then sort: 189 ms per claim with 100,000 pending runs,
 * against 1.2 ms now (EXPLAIN ANALYZE on this machine, 760k rows).
 */
import { heldSessionLocksSql, sessionLockKeySql, sqlLiteral, type Database, type Queryable } from './database.ts';
import { RUN_COLUMNS, toRunRow } from './rows.ts';
import type { RunRow } from './row-types.ts';

/** The text keys a worker's definitions are matched by (see the module comment). */
function definitionKeys(definitions: [string, string][]): string[] {
  return definitions.map(([name, version]) => `${name}\u001f${version}`);
}
const DEFINITION_MATCH = `(workflow || chr(31) || workflow_version) = any($1::text[])`;

/** A claimed run plus whether it has signals waiting (saves a read when it has none). */
export interface ClaimedRun extends RunRow {
  hasSignals: boolean;
  /** When it became runnable, for the claim-lag metric (null for runs claimed at insert). */
  dueAt?: Date | null;
}

/**
 * Claims up to `limit` runnable runs of the given definitions with `FOR UPDATE SKIP LOCKED`: bumps the
 * lease epoch and version, takes the lease for `leaseMs`.
 */
export async function claimRuns(
  db: Queryable,
  options: { owner: string; leaseMs: number; limit: number; definitions: [string, string][] },
): Promise<ClaimedRun[]> {
  if (options.limit <= 0 || options.definitions.length === 0) return [];
  // Runs already under way (due timers, signals, expired leases) go before new ones, so a flood of
  // starts cannot starve work in progress; a keyed run is claimable only once admitted.
  const rows = await db.query<Record<string, unknown>>(
    `with resumed as (
       select id, wake_at as due, lease_owner as prev_owner, lease_epoch as prev_epoch from rmapp_runs
       where status in ('running', 'waiting') and wake_at <= now() and ${DEFINITION_MATCH}
       order by wake_at
       limit $2
       for update skip locked),
     fresh as (
       select id, wake_at as due, null::text as prev_owner, null::int as prev_epoch from rmapp_runs
       where status = 'pending' and wake_at <= now() and (concurrency_key is null or admitted) and ${DEFINITION_MATCH}
       order by wake_at
       limit (select $2 - count(*) from resumed)
       for update skip locked),
     c as (select * from resumed union all select * from fresh),
     u as (
       update rmapp_runs r set
         status = 'running', lease_owner = $3, lease_expires_at = now() + make_interval(secs => $4::float8 / 1000),
         wake_at = now() + make_interval(secs => $4::float8 / 1000),
         lease_epoch = r.lease_epoch + 1, version = r.version + 1, status_message = null, updated_at = now(),
         history_rows = r.history_rows + (c.prev_owner is not null)::int
       from c where r.id = c.id
       returning ${RUN_COLUMNS.split(',')
         .map((c) => `r.${c.trim()}`)
         .join(', ')},
         exists (select 1 from rmapp_run_inbox i where i.run_id = r.id and i.consumed_at is null) as has_signals, c.due,
         c.prev_owner, c.prev_epoch),
     -- A lease that expired while held (its worker died, stalled or lost the database) is a take-over:
     -- the run's history says so, from whom and which session ended.
     taken as (
       insert into rmapp_run_history (run_id, worker, lease_epoch, events)
       select u.id, $3, u.lease_epoch, jsonb_build_array(jsonb_build_object('type', 'lease.taken_over',
         'data', jsonb_build_object('from', u.prev_owner, 'epoch', u.prev_epoch)))
       from u where u.prev_owner is not null)
     select * from u`,
    [definitionKeys(options.definitions), options.limit, options.owner, options.leaseMs],
  );
  return rows.map((r) => ({
    ...toRunRow(r),
    hasSignals: Boolean(r.has_signals),
    dueAt: r.due == null ? null : r.due instanceof Date ? r.due : new Date(String(r.due)),
  }));
}

/**
 * Extends the lease of the runs this owner holds, each at the epoch its session claimed it at (a run
 * this worker claimed again after its lease expired is a new session: the old one must not pass for
 * it). Returns the ids still held and, of those, the ones with unconsumed signals (the fallback when a
 * NOTIFY was lost). A held run missing from the result was lost: its worker must stop touching it.
 *
 * The expiry only moves forward. `now()` is when the statement's transaction began, so a renewal that
 * queued behind a lock (a long commit, an operator's `lock table`) computes an expiry from before the
 * lock went, and it may commit after a renewal sent later — whose expiry the worker already trusts
 * (lease-renewals.ts `renew`). Written as is, it moved the expiry back into the past: another worker claimed
 * the run while its owner, trusting the later renewal, started a step (two executions at once).
 */
export async function renewLeases(
  db: Queryable,
  options: { owner: string; leaseMs: number; runs: { id: string; epoch: number }[] },
): Promise<{ held: Set<string>; withSignals: Set<string> }> {
  if (options.runs.length === 0) return { held: new Set(), withSignals: new Set() };
  const rows = await db.query<{ id: string; has_signals: boolean }>(
    // Rows locked in id order, as the batch commit locks them (commits.ts): the two run on separate
    // connections and, locking in opposite orders, deadlocked (test/lock-order.test.ts).
    `with l as materialized (
       select r.id from rmapp_runs r join jsonb_to_recordset($2::jsonb) as s(id text, epoch int) on s.id = r.id
       where r.lease_owner = $1 and r.lease_epoch = s.epoch and r.status = 'running'
       order by r.id for no key update of r)
     update rmapp_runs r set lease_expires_at = greatest(r.lease_expires_at, now() + make_interval(secs => $3::float8 / 1000)),
       wake_at = greatest(r.wake_at, now() + make_interval(secs => $3::float8 / 1000))
     from l where r.id = l.id
     returning r.id, exists (select 1 from rmapp_run_inbox i where i.run_id = r.id and i.consumed_at is null) as has_signals`,
    [options.owner, JSON.stringify(options.runs), options.leaseMs],
  );
  return {
    held: new Set(rows.map((r) => r.id)),
    withSignals: new Set(rows.filter((r) => r.has_signals).map((r) => r.id)),
  };
}

/**
 * Gives a run back without changing its snapshot: claimable at once by any worker, and the NOTIFY
 * wakes the others now rather than at their next poll.
 */
export async function releaseRun(db: Queryable, options: { owner: string; runId: string; version: number }): Promise<boolean> {
  const rows = await db.query<{ id: string }>(
    `update rmapp_runs set lease_owner = null, lease_expires_at = null, wake_at = now(), version = version + 1, updated_at = now()
     where id = $1 and lease_owner = $2 and version = $3 and status = 'running' returning id, pg_notify('rmapp_wake', id)`,
    [options.runId, options.owner, options.version],
  );
  return rows.length > 0;
}

/**
 * The owner a lease is kept under once its worker has stopped while one of the run's step functions was
 * still running (it ignored its abort): `<owner>:kept` (an owner otherwise ends in 8 hex digits). The
 * take-overs that do not wait for a lease to expire leave it to expire — a new process on an embedded
 * store ({@link expireDeadProcessLeases}), and a worker started again under the same id
 * ({@link expirePreviousIncarnation}) unless it has proven the stopped process gone (exited, killed):
 * taken over at once while that process lived on, the same step ran on the new worker while the
 * stopped process still ran it (adversarial passes).
 */
export function keptOwner(owner: string): string {
  return `${owner}:kept`;
}

/** Marks the run's lease kept ({@link keptOwner}); fenced by owner and version like a release. */
export async function keepLease(db: Queryable, options: { owner: string; runId: string; version: number }): Promise<boolean> {
  const rows = await db.query<{ id: string }>(
    `update rmapp_runs set lease_owner = $2 where id = $1 and lease_owner = $3 and version = $4 and status = 'running' returning id`,
    [options.runId, keptOwner(options.owner), options.owner, options.version],
  );
  return rows.length > 0;
}

/** The earliest future wake-up among the given definitions' runs, to sleep exactly until it. */
export async function nextWakeAt(db: Queryable, definitions: [string, string][]): Promise<Date | null> {
  if (definitions.length === 0) return null;
  // The first due row of each partial index, not a min() over every waiting run.
  const first = (status: string) =>
    `(select wake_at from rmapp_runs where ${status} and wake_at is not null and ${DEFINITION_MATCH} order by wake_at limit 1)`;
  const rows = await db.query<{ at: Date | string | null }>(
    `select least(${first("status = 'pending'")}, ${first("status in ('running', 'waiting')")}) as at`,
    [definitionKeys(definitions)],
  );
  const at = rows[0]?.at;
  return at == null ? null : at instanceof Date ? at : new Date(at);
}

/** The session lock a worker with an operator-chosen id holds under its lease owner (worker-takeover.ts). */
export function ownerLockName(owner: string): string {
  return `rmapp.owner:${owner}`;
}

/**
 * A worker that restarts under the same stable worker id takes back the runs its previous incarnations
 * held, without waiting for their leases to expire (DBOS does the same with its executor id) — only
 * those of `owners`, the incarnations it proved gone (worker-processes.ts): a process the database has
 * lost holds none of its locks there and may still be running steps. With `ownerLocks` (Postgres), a
 * lease whose owner's lock ({@link ownerLockName}) some connection still holds is left to expire too:
 * that owner's process is alive — a second process started under the same id, which could not take
 * the id's lock and runs its own runs — and expiring its leases ran its steps in flight a second time
 * beside it (an adversarial pass).
 */
export async function expirePreviousIncarnation(
  db: Queryable,
  options: {
    workerId: string;
    owners: string[];
    liveOwners: string[];
    ownerLocks?: boolean;
    /**
     * Owners among `owners` whose kept leases ({@link keptOwner}) go too: owners whose process is proven
     * gone (previous-incarnations.ts), so that no step function of theirs runs any more. Others' kept
     * leases are left to expire.
     */
    keptOwners?: string[];
  },
): Promise<number> {
  if (options.owners.length === 0) return 0;
  // The locks held now, read once (pg_locks reads the whole lock table each time).
  const held = options.ownerLocks ? `held as materialized (${heldSessionLocksSql()}),` : '';
  const owner = `case when right(lease_owner, 5) = ':kept' then left(lease_owner, -5) else lease_owner end`;
  const alive = options.ownerLocks ? `and ${sessionLockKeySql(`'rmapp.owner:' || ${owner}`)} not in (select objid from held)` : '';
  const rows = await db.query<{ id: string }>(
    // Locked in id order like every statement that updates several runs (see renewLeases). A kept lease
    // (`<owner>:kept`, {@link keptOwner}) goes only with an owner of `keptOwners`: proven gone, that
    // process runs no step.
    `with ${held} l as materialized (
       select id from rmapp_runs where status = 'running' and left(${owner}, -9) = $1 and ${owner} <> all($2::text[])
         and ${owner} = any($3::text[]) and (right(lease_owner, 5) <> ':kept' or ${owner} = any($4::text[])) ${alive}
       order by id for no key update)
     update rmapp_runs r set lease_expires_at = now(), wake_at = now() from l where r.id = l.id returning r.id`,
    // An owner is `<worker id>:<8 hex chars>`: strip the suffix to compare ids exactly. The owners this
    // process's workers have been (this one among them) are live: a worker started again under the same
    // id in the process after a stop that gave up took over its own step still running.
    [options.workerId, options.liveOwners, options.owners, options.keptOwners ?? []],
  );
  return rows.length;
}

/**
 * Takes over every lease of an embedded store but those of `liveOwners` (this process's own workers):
 * the store lets one process in (`Database.soleHolder`), so the other holders are dead — a process
 * killed while running runs left them leased, and its restart waited out the lease (30 s by default)
 * before resuming them (an adversarial pass). Not a kept lease ({@link keptOwner}): its process stopped
 * its worker and closed the store, but may live on and still run the step.
 */
export async function expireDeadProcessLeases(db: Queryable, liveOwners: string[]): Promise<number> {
  const rows = await db.query<{ id: string }>(
    `with l as materialized (
       select id from rmapp_runs where status = 'running' and lease_owner is not null and lease_expires_at > now()
         and lease_owner <> all($1::text[]) and right(lease_owner, 5) <> ':kept'
       order by id for no key update)
     update rmapp_runs r set lease_expires_at = now(), wake_at = now() from l where r.id = l.id returning r.id`,
    [liveOwners],
  );
  return rows.length;
}

/** Where a worker's admission passes have got to in the keys with queued runs (they go round). */
export interface AdmissionCursor {
  /** Keys after this one (in key order) are looked at next; '' starts again from the first. */
  after: string;
}

/**
 * Keys with queued runs looked at per pass: a range of the queue's index in key order from the
 * cursor (~0.5 ms for 200 keys of a 100,000-run queue on 10,000 full keys), the range's keys with a
 * free slot admitted. Grouping every queued run to find the free keys first cost 86–112 ms a pass
 * there (an adversarial pass: 524 → 83 runs/s for unrelated work), and the first 50 keys alone, in no
 * order, could all be full for ever while a free one waited.
 */
const KEYS_PER_PASS = 200;

/**
 * Admits queued runs into free concurrency slots: first for `freed` keys (a run of theirs ended in this
 * worker), then for the keys of the next range from `cursor`, which moves on (and starts again after
 * the last key). A keyed start admits its own key at once ({@link admitKey}), so a range only catches
 * what the others missed (another worker's run that ended without a pass, a cancel). Returns how many
 * runs were admitted.
 */
export async function admitQueuedRuns(
  db: Database,
  definitions: [string, string][],
  cursor: AdmissionCursor = { after: '' },
  freed: Iterable<string> = [],
): Promise<number> {
  let admitted = 0;
  const done = new Set<string>();
  for (const key of freed) {
    done.add(key);
    admitted += await admitKey(db, key);
  }
  // The range walked key by key down the queue's index (each step the next key after the last): a
  // `select distinct … limit` was planned as a scan of every queued row after the cursor, then a sort.
  const next = `(select min(concurrency_key) from rmapp_runs
      where concurrency_key > %s and status = 'pending' and not admitted and ${DEFINITION_MATCH})`;
  const rows = await db.query<{ key: string; free: boolean }>(
    `with recursive keys(key, n) as (
       select ${next.replace('%s', '$3')}, 1
       union all
       select ${next.replace('%s', 'keys.key')}, keys.n + 1 from keys where keys.key is not null and keys.n < $2)
     select q.key,
       (select count(*) from rmapp_runs u
        where u.concurrency_key = q.key and u.admitted and u.status in ('pending', 'running', 'waiting'))
       < (select coalesce(max(concurrency_limit), 1) from rmapp_runs p
          where p.concurrency_key = q.key and p.status = 'pending' and not p.admitted) as free
     from keys q where q.key is not null order by q.n`,
    [definitionKeys(definitions), KEYS_PER_PASS, cursor.after],
  );
  cursor.after = rows.length < KEYS_PER_PASS ? '' : (rows.at(-1)?.key ?? '');
  for (const { key, free } of rows) if (free && !done.has(key)) admitted += await admitKey(db, key);
  return admitted;
}

/**
 * Admits the oldest queued runs of one key into its free slots. One script (one transaction, one
 * round trip) that first takes `pg_advisory_xact_lock` on the key and only then counts the key's slots
 * in its next statement: under READ COMMITTED that count sees every admission committed before the
 * lock was granted, so two workers can never both take the last slot. Returns how many were admitted.
 */
export async function admitKey(db: Database, key: string): Promise<number> {
  // A script binds no parameters: the key (any text a user gave) goes in as an escaped literal.
  const k = sqlLiteral(key);
  const rows = await db.script<{ id: string }>([
    `select pg_advisory_xact_lock(hashtextextended(${k}, 7283))`,
    `with used as (
       select count(*)::int as n from rmapp_runs
       where concurrency_key = ${k} and admitted and status in ('pending', 'running', 'waiting')),
     limit_of as (
       select coalesce(max(concurrency_limit), 1) as n from rmapp_runs
       where concurrency_key = ${k} and status = 'pending' and not admitted),
     next as (
       select id from rmapp_runs
       where concurrency_key = ${k} and status = 'pending' and not admitted
       order by created_at, id
       limit greatest(0, (select n from limit_of) - (select n from used))),
     -- Chosen oldest first, locked in id order like every statement that locks several runs
     -- (docs/engine-internals.md, "Lock order"); a run cancelled meanwhile is re-checked and left.
     l as materialized (
       select id from rmapp_runs where id in (select id from next) and status = 'pending' and not admitted
       order by id for update)
     update rmapp_runs r set admitted = true, wake_at = now() from l where r.id = l.id
     returning r.id, pg_notify('rmapp_wake', r.id)`,
  ]);
  return rows.length;
}
