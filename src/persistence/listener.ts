/**
 * Postgres's LISTEN connection and the session locks held on it (`Database.holdLock`, database-types.ts): one
 * dedicated connection per store, pinged, made again with backoff when lost, listening again on every
 * channel and taking its locks again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Pg from 'pg';
import { pg } from './pg-driver.ts';
import { backendStartSql, staleBackendsTerminationSql } from './backend-terminations.ts';
import type { ListenOptions, LockHolder } from './database-types.ts';
import { redactUrl } from './connection-string.ts';
import { CONNECT_TIMEOUT_MS, checkChannel, databaseClosed, destroyConnection } from './connection-faults.ts';

/**
 * How often the LISTEN connection is asked `select 1`, and how long it has to answer: a connection that
 * went silent (a partition that kept its socket open) delivers no notification and would answer no
 * UNLISTEN or goodbye until TCP gives up (~15 minutes), holding a stop that long. Unanswered, it is
 * dropped and made again. One statement every 10 s per listening process.
 */
const LISTEN_PING_MS = 10_000;
const LISTEN_ANSWER_MS = 5_000;

/**
 * Lost LISTEN connections whose backends are remembered per server (to terminate one that still holds a
 * lock), at most: each is forgotten once a statement finds it gone, so the bound is only against a link
 * that drops every connection before it says anything. The sixteen newest were kept before, gone or
 * not: a link that dropped sixteen connections in a row, each right after its LISTEN, pushed out the
 * backend still holding the worker's lock, which was then reported as another process under its id and
 * never taken back (test/h9-lock-retake-flapping.test.ts). All are terminated by one statement.
 */
const FORMER_BACKENDS = 1_000;

/**
 * The former LISTEN backends of this process, by connection string ({@link Listener}'s `formerBackends`),
 * in the process's global symbol registry so that every copy of the package loaded in it shares them.
 */
const formerListenBackends: Map<string, FormerBackend[]> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for('rmapp.formerListenBackends')
] ??= new Map()) as Map<string, FormerBackend[]>;

/**
 * A LISTEN connection's backend, known by its process id and its start as the server recorded it
 * (backend-terminations.ts `backendStartSql`): the pair names that one backend, on that server, for good.
 */
interface FormerBackend {
  pid: number;
  started: string;
}

/** The class (first int4 key) of the session locks `Database.holdLock` (database-types.ts) takes: "rmwk". */
const LOCK_CLASS = 0x726d776b;

/**
 * SQL for the second keys of the `Database.holdLock` (database-types.ts) locks some connection to this database holds
 * now (Postgres lists a two-key advisory lock in `pg_locks` with its keys as `classid` and `objid`), to
 * compare with {@link sessionLockKeySql}. Read once per statement in a materialized CTE: `pg_locks`
 * reads the whole lock table each time it is evaluated.
 */
export function heldSessionLocksSql(): string {
  return `select k.objid from pg_locks k where k.locktype = 'advisory' and k.granted and k.objsubid = 2
    and k.database = (select oid from pg_database where datname = current_database()) and k.classid = ${LOCK_CLASS}::oid`;
}

/** The `objid` under which `pg_locks` lists the `Database.holdLock` (database-types.ts) lock named by SQL text expression `name` (hashtext, read as an unsigned oid). */
export function sessionLockKeySql(name: string): string {
  return `oid((hashtext(${name})::bigint + 4294967296) % 4294967296)`;
}

/** A lock of `Database.holdLock` (database-types.ts): whether it is held, and its taking on each connection. */
interface HeldLock {
  name: string;
  onLost: (holder: LockHolder) => void;
  held: boolean;
  /**
   * Its first taking ({@link Listener.holdLock}) has answered: only then is it taken again on a new
   * connection. One made for that very taking would take it twice — a session lock is counted, and one
   * unlock left it held (test/worker-id-in-use.test.ts).
   */
  settled: boolean;
  taken: WeakMap<Pg.Client, Promise<boolean>>;
}

/**
 * LISTEN on one dedicated connection, reconnected with backoff when it is lost (a restart, a
 * terminated backend, a connection that stopped answering) and listening again on every channel.
 * Notifications sent while it is down are lost: once it is made again, the `onReconnect` of every
 * listener that was listening when it was lost runs, so that it looks for what it missed (a worker used
 * to wait for its next poll, `pollMs`).
 */
export class Listener {
  private client: Pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  /** The client of the connection being made, for a forced close. */
  private connectingClient: Pg.Client | null = null;
  private readonly channels = new Map<string, Set<(payload: string) => void>>();
  /**
   * The current connection's LISTEN per channel, sent or done: the first `listen` connects and listens
   * in one go, and a second `listen` of a channel whose LISTEN is in flight waits for that one.
   */
  private listening = new Map<string, Promise<unknown>>();
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private closed = false;
  private pingTimer: NodeJS.Timeout | null = null;
  /**
   * Each listen's `onReconnect`, and whether its listen has succeeded: only a hook that was listening
   * when a connection was lost can have missed anything (one added while the connection was down, or
   * after every channel was given up, is not told when the next connection is made).
   */
  private readonly reconnectHooks = new Map<() => void, { listening: boolean }>();

  /** Each listen's {@link ListenOptions.timeoutMs}, while it listens (or is being sent). */
  private readonly deadlines = new Map<object, number>();

  /** The session locks taken on this connection (`Database.holdLock`, database-types.ts), one per hold. */
  private readonly locks = new Set<HeldLock>();

  /** The backend of the connection in use: its process id and its start (backend-terminations.ts `backendStartSql`). */
  private backend: FormerBackend | null = null;

  /**
   * The backends of the last LISTEN connections to this server that this process lost or closed, newest
   * last: after a partition one may still hold the session locks (the server has not noticed its client
   * left), and is terminated when a lock is taken again ({@link retake}). Shared by every store of the
   * process on the same URL: a worker whose start was cut off after its locks were granted starts
   * again on a new store (engine.ts `startWorker` with `retry`), whose listener knew none of them, and
   * it took its own old backend for another live process under its id.
   */
  private get formerBackends(): FormerBackend[] {
    let list = formerListenBackends.get(this.driverUrl);
    if (!list) formerListenBackends.set(this.driverUrl, (list = []));
    return list;
  }

  /** Remembers the backend of the connection in use as a former one (it was lost, or is being closed). */
  private forgetBackend(): void {
    if (this.backend) {
      const list = this.formerBackends;
      list.push(this.backend);
      if (list.length > FORMER_BACKENDS) list.shift();
    }
    this.backend = null;
  }

  /** The last statement sent on each LISTEN connection: the next one waits for it. */
  private readonly asked = new WeakMap<Pg.Client, Promise<unknown>>();

  /** `url` as written, for messages; `driverUrl` as the driver is given it (`driverConnectionString`, connection-string.ts). */
  constructor(
    private readonly url: string,
    private readonly driverUrl: string = url,
  ) {}

  /**
   * A statement on the LISTEN connection, which must answer within {@link LISTEN_ANSWER_MS}; unanswered,
   * the connection is destroyed (and made again while someone listens). One at a time per connection:
   * listens of new channels at once, a hook that listens, the ping and an UNLISTEN would otherwise be
   * queued inside pg's client, which pg 8 deprecates (a warning on the operator's stderr) and pg 9
   * removes. A statement behind one that timed out finds its connection destroyed and fails at once.
   */
  private ask(client: Pg.Client, text: string): Promise<Pg.QueryResult> {
    // The chain itself never rejects: each caller sees the failure of its own statement.
    const next = (this.asked.get(client) ?? Promise.resolve()).then(() => this.askNow(client, text));
    this.asked.set(
      client,
      next.catch(() => {}),
    );
    return next;
  }

  /**
   * The bound of a making of the connection, of each of its statements and of the backoff between two
   * makings: the shortest {@link ListenOptions.timeoutMs} of the listens, or `fallback`.
   */
  private bound(fallback: number): number {
    return Math.min(fallback, ...this.deadlines.values());
  }

  private async askNow(client: Pg.Client, text: string): Promise<Pg.QueryResult> {
    try {
      return await client.query({ text, query_timeout: this.bound(LISTEN_ANSWER_MS) } as unknown as Pg.QueryConfig);
    } catch (err) {
      if ((err as Error | null)?.message === 'Query read timeout') destroyConnection(client);
      throw err;
    }
  }

  async listen(channel: string, onPayload: (payload: string) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
    checkChannel(channel);
    let set = this.channels.get(channel);
    if (!set) this.channels.set(channel, (set = new Set()));
    set.add(onPayload);
    // A fresh function per listen: the same callback given twice is removed once per unlisten.
    const { onReconnect } = options;
    const hook = onReconnect && (() => onReconnect());
    const state = { listening: false };
    if (hook) this.reconnectHooks.set(hook, state);
    const deadline = {};
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) this.deadlines.set(deadline, Math.max(1, Math.ceil(timeoutMs)));
    try {
      await this.connect();
      // The connection made above listened on every channel already (a LISTEN sent twice cost a start-up a round trip).
      const { client, listening } = this;
      if (client) {
        let sent = listening.get(channel);
        if (!sent) {
          const query = this.ask(client, `LISTEN ${pg.escapeIdentifier(channel)}`);
          listening.set(channel, (sent = query));
          query.catch(() => listening.get(channel) === query && listening.delete(channel));
        }
        await sent;
      }
      state.listening = true;
    } catch (err) {
      set.delete(onPayload);
      if (hook) this.reconnectHooks.delete(hook);
      this.deadlines.delete(deadline);
      if (set.size === 0) this.channels.delete(channel);
      // A close ended the connection under it: pg's "Connection terminated" or "not queryable" says less.
      throw this.closed ? databaseClosed(redactUrl(this.url), ' while this listen was sent') : err;
    }
    return async () => {
      set.delete(onPayload);
      if (hook) this.reconnectHooks.delete(hook);
      this.deadlines.delete(deadline);
      if (set.size > 0 || this.channels.get(channel) !== set) return;
      this.channels.delete(channel);
      this.listening.delete(channel);
      if (this.client) await this.ask(this.client, `UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {});
    };
  }

  /** See `Database.holdLock` (database-types.ts): on this connection, as the LISTENs are. */
  async holdLock(name: string, onLost: (holder: LockHolder) => void): Promise<{ held: boolean; release(): Promise<void> }> {
    // Held already through this store (another engine of this process): Postgres would grant it again
    // to the same connection, so it is refused here — a second holder is what the lock is there to see.
    if ([...this.locks].some((l) => l.name === name)) return { held: false, release: async () => {} };
    const lock: HeldLock = { name, onLost, held: false, settled: false, taken: new WeakMap() };
    this.locks.add(lock);
    const release = async () => {
      if (!this.locks.delete(lock)) return;
      const client = this.client;
      if (client && lock.held)
        await this.ask(client, `select pg_advisory_unlock(${LOCK_CLASS}, hashtext(${pg.escapeLiteral(name)}))`).catch(() => {});
    };
    try {
      await this.connect();
      const client = this.client;
      if (!client) throw databaseClosed(redactUrl(this.url), ' while this lock was taken');
      lock.held = await this.take(client, lock);
      // Refused by a backend of this listener's that a partition left behind (a worker's start that was
      // cut off after its lock was granted, and is tried again): terminated, and the lock tried again —
      // a few times, as it exits in milliseconds; held by another connection, it stays refused.
      for (let tries = 0; !lock.held && tries < 5 && this.client === client && this.locks.has(lock); tries++) {
        const { held, holder } = await this.tryTake(client, lock);
        if (held) lock.held = true;
        else if (holder && !(await this.terminateIfFormer(client, holder.pid))) break;
        else await sleep(50 * 2 ** tries, undefined, { ref: false });
      }
      if (lock.held) lock.taken.set(client, Promise.resolve(true));
      lock.settled = true;
      return { held: lock.held, release };
    } catch (err) {
      this.locks.delete(lock);
      throw err;
    }
  }

  /** Takes `lock` on `client`, once per connection. */
  private take(client: Pg.Client, lock: HeldLock): Promise<boolean> {
    let taken = lock.taken.get(client);
    if (!taken) {
      // Two int4 keys: a key space apart from the bigint keys of the migrations and admissions.
      taken = this.ask(client, `select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${pg.escapeLiteral(lock.name)})) as held`).then(
        (r) => (r.rows[0] as { held?: unknown } | undefined)?.held === true,
      );
      lock.taken.set(client, taken);
    }
    return taken;
  }

  /**
   * Takes `lock` again on `client`, a new connection made after the one it was held on was lost, until it
   * holds it, `client` is lost too (the next connection takes it again), the lock is released or the
   * store closes. Taken once, a refusal used to be final: after a partition the old connection's backend
   * still held the lock — the server does not know its client is gone until TCP keepalive tells it,
   * minutes later — so the lock was lost for the rest of the process (and its holder's liveness with
   * it: claims.ts reads the owner's lock), and a worker reported another process under its id that
   * did not exist. Now each refusal looks at the holder (one statement with the try): one of this
   * listener's former backends is terminated (known by its id and its start, never another backend
   * under the same id: backend-terminations.ts `staleBackendsTerminationSql`) and the lock tried again; another connection is reported once through `onLost`
   * (when the lock was held before), and the lock is still tried again, so that this store holds it
   * again once that connection lets go. Between tries: 100 ms doubling, at most the listens' bound.
   */
  private async retake(client: Pg.Client, lock: HeldLock, wasHeld: boolean): Promise<void> {
    let reported = false;
    for (let tries = 0; this.client === client && this.locks.has(lock) && !this.closed; tries++) {
      try {
        const { held, holder } = await this.tryTake(client, lock);
        if (held) {
          lock.taken.set(client, Promise.resolve(true));
          // Released meanwhile (the lock was taken by the statement): given back at once.
          if (!this.locks.has(lock) || this.client !== client) {
            await this.ask(client, `select pg_advisory_unlock(${LOCK_CLASS}, hashtext(${pg.escapeLiteral(lock.name)}))`).catch(() => {});
            return;
          }
          lock.held = true;
          return;
        }
        lock.held = false;
        if (holder && !(await this.terminateIfFormer(client, holder.pid)) && wasHeld && !reported) {
          if (this.locks.has(lock) && !this.closed) {
            reported = true;
            lock.onLost(holder);
          }
        }
      } catch {
        // The connection failed: its loss makes the next one, which takes the lock again.
      }
      await sleep(Math.min(this.bound(5_000), 100 * 2 ** Math.min(tries, 6)), undefined, { ref: false });
    }
  }

  /**
   * Tries `lock` on `client` once, fresh (not the taking cached per connection): held, or refused with
   * the connection holding it (null when none is listed: it was released in between).
   */
  private async tryTake(client: Pg.Client, lock: HeldLock): Promise<{ held: boolean; holder: LockHolder | null }> {
    const name = pg.escapeLiteral(lock.name);
    const { rows } = await this.ask(
      client,
      `select t.held, h.pid, h.application_name, h.client_addr
         from (select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${name})) as held) t
         left join lateral (
           select l.pid, a.application_name, host(a.client_addr) as client_addr
             from pg_locks l left join pg_stat_activity a on a.pid = l.pid
            where not t.held and l.locktype = 'advisory' and l.granted and l.objsubid = 2
              and l.classid = ${LOCK_CLASS}::oid and l.objid = ${sessionLockKeySql(name)}
              and l.database = (select oid from pg_database where datname = current_database())
              and l.pid <> pg_backend_pid()
            limit 1) h on true`,
    );
    const row = rows[0] as { held?: unknown; pid?: unknown; application_name?: unknown; client_addr?: unknown } | undefined;
    if (row?.held === true) return { held: true, holder: null };
    if (typeof row?.pid !== 'number') return { held: false, holder: null };
    return {
      held: false,
      holder: {
        pid: row.pid,
        applicationName: typeof row.application_name === 'string' ? row.application_name : null,
        clientAddr: typeof row.client_addr === 'string' ? row.client_addr : null,
      },
    };
  }

  /** Terminates backend `pid` if it is one of this listener's former ones; true if it is (whether or not it was still there). */
  private async terminateIfFormer(client: Pg.Client, pid: number): Promise<boolean> {
    // An entry of another copy of the package in this process, of another shape, is not known well enough to terminate.
    const former = this.formerBackends.find((b) => b.pid === pid && typeof b.started === 'string');
    if (!former) return false;
    await this.terminateFormers(client, [former]);
    return true;
  }

  /**
   * Terminates `formers`, those of this process's former backends still there, in one statement; those
   * found gone are forgotten (an id and start name one backend for good: gone, it holds nothing).
   */
  private async terminateFormers(client: Pg.Client, formers: FormerBackend[]): Promise<void> {
    if (formers.length === 0) return;
    const { rows } = await this.ask(client, staleBackendsTerminationSql(formers));
    const gone = new Set(
      (rows as { pid?: unknown; started?: unknown; present?: unknown }[])
        .filter((r) => r.present === false)
        .map((r) => `${r.pid}/${r.started}`),
    );
    const list = this.formerBackends;
    for (let i = list.length - 1; i >= 0; i--) if (gone.has(`${list[i]?.pid}/${list[i]?.started}`)) list.splice(i, 1);
  }

  private connect(): Promise<void> {
    if (this.client) return Promise.resolve();
    // A listen after close() would open a connection nothing closes.
    if (this.closed) return Promise.reject(databaseClosed(redactUrl(this.url)));
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.driverUrl,
        application_name: 'rmapp',
        connectionTimeoutMillis: this.bound(CONNECT_TIMEOUT_MS),
      });
      this.connectingClient = client;
      const lost = () => this.lost(client);
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (m) => {
        for (const fn of this.channels.get(m.channel) ?? []) fn(m.payload ?? '');
      });
      const listening = new Map<string, Promise<unknown>>();
      let started: unknown = null;
      try {
        await client.connect();
        // What names this backend for a termination after it is lost (one statement, once per connection).
        // Before the LISTENs, so that a connection's last statement is its LISTEN, as an operator reading
        // pg_stat_activity (and test/ownership-faults.test.ts) looks for a worker listening by.
        started = ((await this.ask(client, backendStartSql())).rows[0] as { started?: unknown } | undefined)?.started ?? null;
        for (const channel of this.channels.keys()) {
          await this.ask(client, `LISTEN ${pg.escapeIdentifier(channel)}`);
          listening.set(channel, Promise.resolve());
        }
      } catch (err) {
        client.removeAllListeners();
        client.on('error', () => {});
        await client.end().catch(() => {});
        throw err;
      }
      this.client = client;
      this.listening = listening;
      this.failures = 0;
      const pid = (client as unknown as { processID?: unknown }).processID;
      this.backend = typeof pid === 'number' && typeof started === 'string' ? { pid, started } : null;
      // This process's former LISTEN backends, terminated first (a session lock none asks for again — the
      // owner of a start that was cut off and tried again under a new one — would linger with one until
      // the server's keepalive); then the locks held on the connection that was lost, taken again (see
      // retake). One statement at a time on this connection, in this order. Kept in the list: a backend
      // exits a moment after it is signalled, and a lock it still holds then is known as this process's;
      // forgotten once a statement finds it gone.
      const formers = this.formerBackends.filter((b) => b.pid !== this.backend?.pid && typeof b.started === 'string');
      void this.terminateFormers(client, formers).catch(() => {});
      for (const lock of this.locks) if (lock.settled) void this.retake(client, lock, lock.held);
      for (const [hook, state] of this.reconnectHooks) {
        if (!state.listening) continue;
        // Once the connection is in place, each hook still registered when its turn comes (a hook may
        // stop another listen); a hook's failure, thrown or rejected, must not reach the others or the process.
        void Promise.resolve()
          .then(() => (this.reconnectHooks.has(hook) && !this.closed ? hook() : undefined))
          .catch(() => {});
      }
      let asking = false;
      this.pingTimer = setInterval(() => {
        if (asking || this.client !== client) return;
        asking = true;
        this.ask(client, 'select 1')
          .catch(() => {})
          .finally(() => (asking = false));
      }, LISTEN_PING_MS);
      this.pingTimer.unref();
    })().finally(() => {
      this.connecting = null;
      this.connectingClient = null;
    });
    return this.connecting;
  }

  private lost(client: Pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.forgetBackend();
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    client.removeAllListeners();
    client.on('error', () => {});
    void client.end().catch(() => {});
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.retryTimer || this.channels.size === 0) return;
    const delay = Math.min(this.bound(5_000), 100 * 2 ** Math.min(this.failures, 6));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().catch(() => {
        this.failures += 1;
        this.retry();
      });
    }, delay);
    this.retryTimer.unref();
  }

  /** Destroys the connection's socket, made or being made: a close waiting for it goes on. */
  destroy(): void {
    const client = this.client ?? this.connectingClient;
    if (client) destroyConnection(client);
  }

  async close(): Promise<void> {
    this.closed = true;
    // Its goodbye may never reach the server (a partition): its backend may linger, holding the locks.
    this.forgetBackend();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client ?? this.connectingClient;
    // A connection being made is given up, not waited for: to a server that stopped answering it takes
    // its whole connect timeout (30 s).
    if (this.connectingClient) destroyConnection(this.connectingClient);
    await this.connecting?.catch(() => {});
    // After the connection being made is done: it arms its own.
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.client = null;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      // A server that stopped answering never says goodbye: the socket is destroyed after a while.
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, LISTEN_ANSWER_MS)));
      await Promise.race([client.end().catch(() => {}), gaveUp]);
      clearTimeout(timer);
      destroyConnection(client);
    }
  }
}
