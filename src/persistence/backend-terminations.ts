/**
 * The terminations of timed-out statements' backends (persistence/postgres-store.ts `timedQuery`), made over
 * one connection per store at a time. A backend does not notice that its client gave up on it: a
 * statement blocked on a lock, or busy, runs to its end and commits after its caller was told it timed
 * out, so each timed-out statement's backend is terminated over a connection of its own (a pooled one
 * may be silent). Each statement used to open that connection itself: under a partition at a short
 * lease every timed-out commit, claim, renewal and read opened one — about 200 connection attempts
 * through the partition in a few minutes, each held until its connect timeout, then a burst of them at
 * the heal (test/backend-terminations.test.ts). Now the backends to terminate are queued, keyed by
 * process id (a backend asked twice is terminated once), and one connection at a time terminates all
 * that are queued, in batches of one statement each; after a failed attempt the next waits its backoff
 * — no connection is started while one to the same server is under way or has just failed.
 */
import type * as Pg from 'pg';

/** The longest a termination's connect, and its statement, may take (then the attempt is given up). */
export const TERMINATE_TIMEOUT_MS = 5_000;

/** Backends terminated by one statement, at most: a statement's text can be long (a script's inlined values). */
const BATCH = 50;

/**
 * How many attempts a backend's termination gets before it is given up (its failure is only lost
 * cleanup): enough to outlast a partition of about a minute, and one statement that the server
 * refuses (a role that may not terminate) is not sent again for ever.
 */
const TRIES = 6;

/** Backends queued at most: past it the oldest request is dropped (one per pooled connection lost in a partition, in practice). */
const MAX_QUEUED = 1_000;

/** The backoff after a failed attempt: 500 ms doubling, at most 5 s (one attempt in flight at a time besides). */
function backoffMs(failures: number): number {
  return Math.min(5_000, 500 * 2 ** Math.min(failures - 1, 4));
}

interface Request {
  text: string;
  /** When the statement was sent (`performance.now()`): its backend had started by then. */
  sentAt: number;
  tries: number;
}

/**
 * SQL that terminates each of `backends` still there, each only if it is the very backend known by its
 * id and its start (`started`: `extract(epoch from backend_start)` as text, read on its own connection
 * when it was made, {@link backendStartSql}) — the LISTEN connection's old backends, which a network
 * partition left behind holding their session locks until the server's TCP keepalive notices they are
 * gone (listener.ts `Listener`). Their statement text cannot serve: an idle backend shows the last one it
 * received, which the partition may have swallowed. An age guard (started at least as long ago as the
 * connection was made, by this process's clock) let through a backend of another client under the same
 * id on another server — a failover behind one address, to a server in another PID space (a container,
 * another host), whose clients connected long before — and any backend under a reused id while this
 * process's clock stood still (a suspended machine: the monotonic clock does not count it):
 * test/h9-former-backend-failover.test.ts. One statement for them all. Answers a row per backend:
 * `pid`, `started`, and `present` — false once it is gone (it can hold nothing any more).
 */
export function staleBackendsTerminationSql(backends: readonly { pid: number; started: string }[]): string {
  for (const { pid, started } of backends)
    if (!Number.isSafeInteger(pid) || !/^\d{1,12}(\.\d{1,9})?$/.test(started))
      throw new Error(`staleBackendsTerminationSql: bad pid ${pid} or start ${started}`);
  const pids = backends.map((b) => b.pid).join(',');
  const starts = backends.map((b) => `'${b.started}'`).join(',');
  return `select t.pid, t.started, a.pid is not null as present, a.pid is not null and pg_terminate_backend(a.pid) as terminated
            from unnest(array[${pids}]::int[], array[${starts}]::text[]) as t(pid, started)
            left join pg_stat_activity a on a.pid = t.pid and extract(epoch from a.backend_start)::text = t.started`;
}

/** SQL answering `started`, this connection's backend's start as {@link staleBackendTerminationSql} compares it. */
export function backendStartSql(): string {
  return `select extract(epoch from backend_start)::text as started from pg_stat_activity where pid = pg_backend_pid()`;
}

/**
 * One store's terminations; see the module comment. `open` makes a new, unconnected client (with its
 * connect timeout); `destroy` destroys a client's socket (an end() to a silent server never ends).
 */
export class BackendTerminations {
  private readonly queue = new Map<number, Request>();
  private draining: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  /** No attempt starts before this (`performance.now()`): the backoff after a failed one. */
  private retryAt = 0;
  private closed = false;

  constructor(
    private readonly open: () => Pg.Client,
    private readonly destroy: (client: Pg.Client) => void,
  ) {}

  /**
   * Terminates backend `pid` if it still runs `text` — a prefix of it, as pg_stat_activity keeps the
   * first track_activity_query_size bytes (1 kB by default), and a batch commit or a claim is longer —
   * and started before `sentAt` (`performance.now()` when the statement was sent on its connection).
   * Behind a pooler the id may name another's backend: only one running this statement is terminated.
   * And a process id is used again once its backend exits: a termination retried for a minute in a
   * partition could otherwise find a new backend under the id running the same statement for another
   * caller (another worker's claim or commit, whose text is this one's) and kill it. Such a backend
   * started after the statement was sent: the server's `now()` less the time since then (measured here,
   * on a clock that never steps) is a moment its own backend had started by, and a new one had not.
   */
  request(pid: number, text: string, sentAt: number): void {
    this.queue.delete(pid);
    this.queue.set(pid, { text, sentAt, tries: 0 });
    if (this.queue.size > MAX_QUEUED) this.queue.delete(this.queue.keys().next().value as number);
    this.schedule();
  }

  /**
   * For the store's close: no attempt is scheduled any more (a retry after the close would open a
   * connection nothing closes). Waits for the attempt under way; what is still queued then gets one
   * last attempt unless the last one failed — with `force` (the backends of a forced close's statements
   * still running) even then. A request made after it is tried at once, once.
   */
  async close(options: { force?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.draining;
    if (this.queue.size > 0 && (options.force === true || this.failures === 0)) this.drain();
    await this.draining;
  }

  /**
   * Starts the drain when something is queued and none runs or waits: at once, or once the backoff of
   * the last failed attempt is over (a request while the server has just failed waits for it too).
   * After the close, at once and only from a request: the close makes its own last attempt.
   */
  private schedule(): void {
    if (this.draining || this.retryTimer || this.queue.size === 0) return;
    const wait = this.retryAt - performance.now();
    if (wait <= 0 || this.closed) return this.drain();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.schedule();
    }, wait);
    this.retryTimer.unref();
  }

  /** Starts the one drain, if none runs: it takes what is queued until the queue is empty or an attempt fails. */
  private drain(): void {
    if (this.draining) return;
    this.draining = this.run().finally(() => {
      this.draining = null;
      // What failed waits for its backoff; what came while the last connection was ending goes now.
      if (!this.closed) this.schedule();
    });
  }

  private async run(): Promise<void> {
    const client = this.open();
    let batch: [number, Request][] = [];
    try {
      await client.connect();
      while (this.queue.size > 0) {
        batch = [...this.queue].slice(0, BATCH);
        for (const [pid] of batch) this.queue.delete(pid);
        const now = performance.now();
        await client.query({
          text: `select pg_terminate_backend(a.pid) from pg_stat_activity a
                   join unnest($1::int[], $2::text[], $3::float8[]) as t(pid, text, age_ms) on a.pid = t.pid
                  where a.query <> '' and starts_with(t.text, a.query)
                    and a.backend_start <= now() - make_interval(secs => t.age_ms / 1000)`,
          values: [batch.map(([pid]) => pid), batch.map(([, r]) => r.text), batch.map(([, r]) => Math.max(0, now - r.sentAt))],
          query_timeout: TERMINATE_TIMEOUT_MS,
        } as unknown as Pg.QueryConfig);
        batch = [];
      }
      this.failures = 0;
      this.retryAt = 0;
    } catch {
      // The batch in flight goes back, unless a newer request for the same backend came meanwhile.
      for (const [pid, r] of batch) if (!this.queue.has(pid) && r.tries + 1 < TRIES) this.queue.set(pid, { ...r, tries: r.tries + 1 });
      // Requests never sent count an attempt too: a connection that could not be made.
      if (batch.length === 0)
        for (const [pid, r] of this.queue) {
          r.tries += 1;
          if (r.tries >= TRIES) this.queue.delete(pid);
        }
      this.failures += 1;
      this.retryAt = performance.now() + backoffMs(this.failures);
    } finally {
      // A goodbye to a server that stopped answering would never end.
      const timer = setTimeout(() => this.destroy(client), TERMINATE_TIMEOUT_MS);
      await client.end().catch(() => {});
      clearTimeout(timer);
    }
  }
}
