/**
 * The store's interface, whatever the driver (database.ts opens one): its statements, scripts, listens
 * and session locks. Types only, so that each driver's module (postgres-store.ts, pglite-store.ts,
 * listener.ts) can name them without importing the module that chooses between them.
 */
/** A transaction-scoped query function: every statement runs on the transaction's connection. */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<T[]>;
}

/** Per-statement options of {@link Queryable.query}; a wrapper or PGlite may ignore them. */
export interface QueryOptions {
  /**
   * The longest the statement may take, from the call to its answer: the wait for a pooled connection
   * (a free slot, or a new connection's handshake) counts. Past it, it fails with `QUERY_TIMEOUT`
   * (transient), its connection's socket is destroyed, not given back to the pool, and its backend is
   * terminated: a connection whose server stopped answering (a network partition) would otherwise hold
   * a pool slot for as long as TCP takes to notice, and a backend blocked on a lock would outlive its
   * client. Only the answer used to count: in a partition that also swallowed new connections, a
   * statement waited out the pool's connect timeout (30 s) first — longer than a worker's lease — and
   * the connections the partition left half-made held the pool that long after it healed. For reads a
   * caller gives up on (`engine.waitFor`), and every statement of a worker (`withStatementTimeout`, database.ts).
   * `Infinity` or `NaN`: none.
   */
  timeoutMs?: number | undefined;
}

/** Options of {@link Database.listen}. */
export interface ListenOptions {
  /** Called when the LISTEN connection has been made again after it was lost (notifications may have been missed). */
  onReconnect?: () => void;
  /**
   * The longest a making of the LISTEN connection — its handshake — and each of its statements may take
   * while this listen is listening, before it is given up and tried again after a backoff no longer
   * than this either. The connection is shared: the shortest of its listens' counts. Without it, 30 s
   * for the handshake and 5 s for a statement. `withStatementTimeout` (database.ts) gives its statements'
   * deadline: in a partition that swallows new connections, a handshake sent into it is never answered,
   * even after the heal, and a worker heard no wake-up until its connect timeout gave up on it — up to
   * 30 s after the heal (test/listen-reconnect-heal.test.ts). `Infinity` or `NaN`: none of its own.
   */
  timeoutMs?: number | undefined;
}

/** The connection that holds a {@link Database.holdLock} lock this store could not take again, as `pg_stat_activity` names it. */
export interface LockHolder {
  /** Its backend's process id on the server. */
  pid: number;
  applicationName: string | null;
  /** The client's address as the server sees it; null for a Unix socket. */
  clientAddr: string | null;
}

/** The store's connection, whatever the driver. */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Where the data lives, with any password removed: safe to log. */
  readonly description: string;
  /**
   * Runs parameterless statements as one transaction in one round trip and returns the rows of the
   * last statement that returns rows. It is one simple-protocol message, so Postgres runs it as an implicit transaction
   * block: all or nothing, and under READ COMMITTED each statement takes a new snapshot (a lock taken
   * by one statement is held to the end and the next statement sees everything committed before it
   * was granted). One message, so one connection and no transaction left open if it is lost midway
   * (docs/database-driver.md). Values must be inlined with `sqlLiteral` (sql-text.ts). `options.timeoutMs`
   * bounds it as it bounds {@link Queryable.query}.
   */
  script<T = Record<string, unknown>>(statements: readonly string[], options?: QueryOptions): Promise<T[]>;
  /**
   * LISTEN on a channel (1 to 63 bytes: Postgres truncates longer names; refused with
   * `INVALID_CHANNEL`); resolves to a function that stops listening. Notifications sent while the
   * LISTEN connection is down are lost: `onReconnect` runs once it is made again (for a listen that
   * was listening when it was lost), so that the listener can look for what it missed (a worker claims)
   * instead of waiting for its next poll. Never called on PGlite, whose notifications cannot be lost.
   * `options.timeoutMs` bounds the making of the LISTEN connection again ({@link ListenOptions.timeoutMs}).
   */
  listen(channel: string, onPayload: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  /**
   * Takes the session-level lock named `name` on Postgres's LISTEN connection: `held` false when another
   * connection holds it (a live process, or the lingering backend of one gone) — one this store made and
   * lost is terminated and the lock tried again (a few times). Held until `release` or
   * the store closes; taken again whenever that connection is made again, tried until it is held (the
   * backoff at most the listens' bound, {@link ListenOptions.timeoutMs}): a connection this store made
   * before and lost (a partition leaves its backend alive on the server, holding the lock, until TCP
   * keepalive notices) is terminated; `onLost` runs, once per loss, only when another connection — not
   * one of this store's — holds it, and is told which. A worker holds its chosen `workerId` so that a
   * second live process under the same id is told apart from a restart (worker-takeover.ts). Absent on PGlite
   * (one process).
   */
  holdLock?(name: string, onLost: (holder: LockHolder) => void): Promise<{ held: boolean; release(): Promise<void> }>;
  /**
   * True for an embedded store on disk (wrappers such as `withStatementTimeout` (database.ts) pass it on): this
   * process holds the store alone (data-dir-lock.ts), so a lease held by an owner that none of its
   * workers has been was a dead process's, and a worker takes it over at once (worker-takeover.ts) rather than
   * after the lease.
   */
  readonly soleHolder?: boolean;
  /**
   * Closes every connection once its statement in flight has answered. With `force`, at once: each
   * connection's socket is destroyed and a statement in flight fails — for a stop that gave up waiting
   * (a statement held on a lock, a server that stopped answering), which would otherwise keep the
   * process alive. A wrapper may ignore `force`.
   */
  close(options?: { force?: boolean }): Promise<void>;
}
