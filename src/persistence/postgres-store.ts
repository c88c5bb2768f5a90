/**
 * The store on a real Postgres through node-postgres (database.ts `openDatabase` with a URL): a pool
 * whose statements are bounded by their deadline, whose timed-out backends are terminated, and whose
 * LISTEN connection (listener.ts) is made again when lost. Why node-postgres: docs/database-driver.md.
 */
import { createHash } from 'node:crypto';
import type * as Pg from 'pg';
import { pg } from './pg-driver.ts';
import { configError } from './config-error.ts';
import { BackendTerminations, TERMINATE_TIMEOUT_MS } from './backend-terminations.ts';
import type { Database, QueryOptions } from './database-types.ts';
import {
  connectionError,
  setUpProblem,
  driverConnectionString,
  queryLeftEncoded,
  redactUrl,
  sslFileParams,
  SSL_MODES,
  userinfoCutShort,
} from './connection-string.ts';
import {
  CONNECT_TIMEOUT_MS,
  databaseClosed,
  destroyConnection,
  NOT_QUERYABLE,
  queryTimeout,
  SILENT_CONNECTION,
  silentConnection,
} from './connection-faults.ts';
import { joinScript } from './sql-text.ts';
import { PLANNER_SETTINGS } from './planner-settings.ts';
import { Listener } from './listener.ts';

export function openPostgres(url: string, max: number, source: string): Database {
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw configError(
      `${source} is not a Postgres connection string: got "${redactUrl(url)}". Use postgres://USER@HOST:5432/DATABASE (USER:PASSWORD@ when the server asks for a password), or unset it to use the embedded PGlite store.`,
    );
  }
  if (queryLeftEncoded(url)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: the URL holds a "%" that does not start an escape (%XX), so the driver would read its query values (after "?") still percent-encoded — write that "%" as %25 in ${source}.`,
    );
  }
  // The driver parses the string (and reads its SSL files) at each connect; a mistake in it is found
  // here, once, with what to fix, instead of at the first statement.
  if (userinfoCutShort(url)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: an "@" comes after the host, so the URL's user or password holds a "/", "?" or "#" — percent-encode them (/ as %2F, ? as %3F, # as %23) in ${source}.`,
    );
  }
  // The driver takes any other value as SSL with full verification: `sslmode=bogus` was then answered
  // "the server does not accept SSL connections", never that the value itself is wrong.
  // The driver keeps a parameter's last value; `uselibpqcompat=true` reads them as libpq does, without
  // `no-verify` (the driver then verifies fully, as for an unknown value).
  const params = sslFileParams(url);
  const sslmode = params.getAll('sslmode').at(-1);
  const modes = params.getAll('uselibpqcompat').at(-1) === 'true' ? SSL_MODES.filter((m) => m !== 'no-verify') : SSL_MODES;
  if (sslmode !== undefined && !modes.includes(sslmode)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: sslmode=${JSON.stringify(sslmode.slice(0, 40))} is not an SSL mode${modes === SSL_MODES ? '' : ' with uselibpqcompat=true'} — use one of ${modes.join(', ')} in ${source}.`,
    );
  }
  const driverUrl = driverConnectionString(url);
  let probe: Pg.Client;
  try {
    probe = new pg.Client({ connectionString: driverUrl });
  } catch (err) {
    // Parsing only: whatever fails here is the string's (or its SSL files'), never an outage.
    throw (
      setUpProblem(err, url, source) ??
      Object.assign(configError(`Cannot use Postgres at ${redactUrl(url)}: ${(err as Error).message}.`), { cause: err })
    );
  }
  // The port (`:port`, `?port=`, PGPORT) is read at connect time: pg-pool then throws inside its connect,
  // keeps the broken client, and its end() never resolves — a worker that could not be stopped.
  const port = (probe as unknown as { port: unknown }).port;
  if (!(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: the port is not a number from 1 to 65535 (from the URL's :port or ?port=, or PGPORT) — fix it in ${source}.`,
    );
  }
  // The pool's connections, for a forced close, from the moment each starts connecting (pg-pool lists
  // none publicly, and its 'connect' event comes only once a connection is made).
  const clients = new Set<Pg.Client>();
  // When each connection still being made started (pg-pool makes it at once): one that has not finished
  // its handshake after a whole statement deadline went into a partition (its startup message, or the
  // server's answer, was lost) and is dropped with the silent ones (`dropSilent`).
  const connectingSince = new Map<Pg.Client, number>();
  class TrackedClient extends pg.Client {
    constructor(config?: string | Pg.ClientConfig) {
      super(config);
      addPlannerOptions(this);
      // A connection lost while no statement of the pool's listens (one removed after a timed-out read and
      // ending, or connecting through a network that went silent) must not throw an uncaught 'error'
      // event; a statement running on it gets the error itself.
      this.on('error', () => {});
      clients.add(this);
      connectingSince.set(this, performance.now());
      this.once('connect', () => connectingSince.delete(this));
      this.once('end', () => {
        clients.delete(this);
        connectingSince.delete(this);
      });
    }
  }
  const pool = new pg.Pool({
    connectionString: driverUrl,
    max,
    idleTimeoutMillis: 60_000,
    // Idle connections do not keep the process alive (a script that used the engine as a client, a
    // waitFor that reopened the database after a stop): what runs keeps it alive, not the pool.
    allowExitOnIdle: true,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'rmapp',
    Client: TrackedClient,
  });
  // When each connection last answered (given back to the pool), and which are in use: after a statement
  // that got no answer, the idle ones that have not answered since it was sent are dropped too (below).
  const lastAnswered = new WeakMap<Pg.Client, number>();
  const inUse = new Set<Pg.Client>();
  pool.on('acquire', (client) => inUse.add(client));
  pool.on('release', (_err, client) => {
    inUse.delete(client);
    lastAnswered.set(client, performance.now());
  });
  pool.on('remove', (client) => inUse.delete(client));
  // A pooled connection whose backend dies while idle (a restart, pg_terminate_backend) is dropped by
  // the pool, which then emits 'error'; with no listener Node would throw it. The next statement gets
  // a new connection; a statement that was running on it fails with the error, to its caller.
  pool.on('error', () => {});
  // Statements in flight: a close waits for them before it ends the pool. pg-pool's end() leaves a
  // statement still waiting for a connection unanswered until its connect timeout (30 s), so the pool
  // is ended only once they are done; a forced close fails them at once.
  const inFlight = new Set<Promise<unknown>>();
  // How each statement in flight is failed by a forced close. Not a race against one promise that a
  // forced close rejects: a promise that never settles keeps a reaction per race, so every statement
  // an engine ever sent stayed in memory (~560 B each: a worker grew without bound, and at concurrency 1
  // every scavenge copied what a few hundred statements had left, test/database-memory.test.ts).
  const failers = new Set<(err: Error) => void>();
  let failForced: (err: Error) => void = () => {};
  const forced = new Promise<never>((_, reject) => (failForced = reject));
  forced.catch(() => {});
  let ending: Promise<void> | null = null;
  const description = redactUrl(url);
  const closedError = (how: string) => databaseClosed(description, how);
  const tracked = <T>(work: () => Promise<T>): Promise<T> => {
    if (ending) return Promise.reject(closedError(''));
    const running = work();
    inFlight.add(running);
    return new Promise<T>((resolve, reject) => {
      failers.add(reject);
      const settled = () => {
        inFlight.delete(running);
        failers.delete(reject);
      };
      running.then(
        (value) => {
          settled();
          resolve(value);
        },
        (err: unknown) => {
          settled();
          reject(err);
        },
      );
    });
  };
  /**
   * The deadline timers of the statements in flight: a forced close clears them, so that a statement it
   * failed while it waited for a connection keeps no timer — and the process — alive until its deadline.
   */
  const deadlines = new Set<NodeJS.Timeout>();
  /**
   * The connections the terminations make (bounded by their own timeout): a close that gives up the
   * pool's half-made connections, or a forced close that destroys the pool's, leaves these be, or a
   * backend blocked on a lock would outlive it.
   */
  const terminators = new WeakSet<Pg.Client>();
  /**
   * The terminations of timed-out statements' backends, over one connection at a time (a close waits for
   * the one under way: left behind, it kept its connection, and the process, alive past the close — up to
   * its bound in a partition, where its handshake is never answered — and the backend it was for could
   * still be running when the caller was told the store was closed, test/close-in-partition.test.ts).
   * Each on a connection of its own, they piled up in a partition (test/backend-terminations.test.ts).
   */
  const terminations = new BackendTerminations(() => {
    const client = new TrackedClient({
      connectionString: driverUrl,
      application_name: 'rmapp',
      connectionTimeoutMillis: TERMINATE_TIMEOUT_MS,
    });
    terminators.add(client);
    return client;
  }, destroyConnection);
  /**
   * The statement each connection runs now (timed or not), and when it was sent (`performance.now()`):
   * what a forced close terminates on the server, and how old its backend is at least.
   */
  const running = new Map<Pg.Client, { text: string; sentAt: number }>();
  /**
   * Every statement, on a connection of its own from the pool, known in `running` while it runs so that
   * a forced close terminates its backend: one blocked on a lock, or busy, does not notice its client left
   * (a migration cut off by a stop went on waiting on the server and applied itself once the lock was
   * released, long after its process had exited). A connection pg already knows is dead — its backend
   * died just before the pool handed it out — fails the statement before anything is sent: it goes to
   * another one (pg-pool's own `query` never met this; a storm of terminated backends did,
   * test/driver-faults.test.ts). `using` is told the connection the statement runs on (undefined once it
   * is given back). With `abandoned` (a statement with a deadline), a connection being made for it that
   * another statement's deadline dropped as silent is made again, until its own deadline; once
   * `abandoned()` — the deadline passed while it waited for a connection — the connection it gets at last
   * goes back to the pool unused.
   */
  const onConnection = async (
    config: Pg.QueryConfig,
    hooks: { using?: (client: Pg.PoolClient | undefined) => void; abandoned?: () => boolean } = {},
  ): Promise<Pg.QueryResult> => {
    let unqueryable = 0;
    for (;;) {
      let client: Pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        if (hooks.abandoned && !hooks.abandoned() && (err as { code?: unknown } | null)?.code === SILENT_CONNECTION) continue;
        throw err;
      }
      if (hooks.abandoned?.()) {
        client.release();
        throw new Error('The statement was given up before a connection was free.');
      }
      hooks.using?.(client);
      running.set(client, { text: config.text, sentAt: performance.now() });
      try {
        const result = await client.query(config);
        running.delete(client);
        hooks.using?.(undefined);
        client.release();
        return result;
      } catch (err) {
        running.delete(client);
        hooks.using?.(undefined);
        client.release(err as Error);
        if (unqueryable++ < 2 && !hooks.abandoned?.() && NOT_QUERYABLE.test((err as Error | null)?.message ?? '')) continue;
        throw err;
      }
    }
  };
  /**
   * After a statement sent at `sentAt` got no answer within `timeout`: the pool's other connections that
   * cannot have answered since may have gone silent with it (a partition silences every open connection,
   * and every connection being made through it). Each would hold the next statement that gets it for a
   * whole deadline, one after the other, and a half-made one holds a pool slot until pg-pool's connect
   * timeout (30 s) — also after the partition healed. Dropped now, they are made anew, a few milliseconds
   * each: idle ones not answered since `sentAt`, and ones whose handshake has lasted half the deadline or
   * more (a handshake takes milliseconds; the one made for this very statement started just after it).
   */
  const dropSilent = (sentAt: number, timeout: number, except: Pg.Client | undefined): void => {
    const now = performance.now();
    for (const other of clients) {
      if (other === except || inUse.has(other)) continue;
      const answered = lastAnswered.get(other);
      const connecting = connectingSince.get(other);
      if ((answered !== undefined && answered < sentAt) || (connecting !== undefined && now - connecting >= timeout / 2))
        destroyConnection(other, silentConnection());
    }
  };
  /**
   * A statement with a deadline `timeout` ms from now, for all of it: the wait for a pooled connection
   * (a free slot, a new connection's handshake) and the answer. Past it the statement fails with
   * `QUERY_TIMEOUT`; the socket of the connection it runs on is destroyed (pg-pool then drops the
   * connection), its backend is terminated, so that every timed-out statement does not leave a backend
   * behind while the pool opens new ones, and the connections that went silent with it are dropped
   * (`dropSilent`). A statement given up while it waited for a connection gives that connection back
   * unused when it comes.
   *
   * A statement cut off this way was applied whole or not at all (one statement, or one script, is one
   * transaction), and its caller cannot tell which: an engine's commit is sent again as a write in doubt
   * (state_machine/committer.ts). pg's own `query_timeout` was used before: it starts only once a
   * connection is in hand.
   */
  const timedQuery = async (config: Pg.QueryConfig, timeout: number): Promise<Pg.QueryResult> => {
    const sentAt = performance.now();
    let expired = false;
    let on: Pg.PoolClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        deadlines.delete(timer as NodeJS.Timeout);
        expired = true;
        const client = on;
        if (client) {
          const pid = (client as unknown as { processID?: unknown }).processID;
          // Over a connection of the terminations' own: a pooled one may have gone silent (a partition
          // silences every open one) or have just been dropped (below).
          const sent = running.get(client);
          if (typeof pid === 'number' && sent) terminations.request(pid, sent.text, sent.sentAt);
          destroyConnection(client);
        }
        dropSilent(sentAt, timeout, client);
        reject(queryTimeout(description, timeout, client ? 'no answer' : 'no connection'));
      }, timeout);
      deadlines.add(timer);
    });
    const work = onConnection(config, { using: (c) => (on = c), abandoned: () => expired });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
      deadlines.delete(timer as NodeJS.Timeout);
    }
  };
  /** Runs `config` with a deadline of `ms` when it is a finite number (a Node timer holds at most 2^31-1 ms). */
  const run = (config: Pg.QueryConfig, ms: number | undefined): Promise<Pg.QueryResult> => {
    const timeout = ms !== undefined && Number.isFinite(ms) ? Math.min(2 ** 31 - 1, Math.max(1, Math.ceil(ms))) : null;
    return timeout !== null ? timedQuery(config, timeout) : onConnection(config);
  };
  const query = <T>(text: string, params: readonly unknown[] = [], options: QueryOptions = {}): Promise<T[]> =>
    tracked(async () => {
      // Parameterized statements are prepared once per connection: the commit CTE costs ~0.5 ms to plan.
      const named = params.length > 0 ? { text, values: params as unknown[], name: statementName(text) } : { text };
      try {
        // pg-pool throws synchronously when the connection string cannot be used (an SSL file gone since).
        return (await run(named, options.timeoutMs)).rows as T[];
      } catch (err) {
        if ((err as { code?: unknown }).code === 'QUERY_TIMEOUT') throw err;
        throw connectionError(err, url, source);
      }
    });
  const listener = new Listener(url, driverUrl);
  return {
    kind: 'postgres',
    description,
    query,
    script<T>(statements: readonly string[], options: QueryOptions = {}) {
      return tracked(async () => {
        // No parameters: one simple-protocol Query message. Several statements give one result each.
        let result: Pg.QueryResult | Pg.QueryResult[];
        try {
          result = (await run({ text: joinScript(statements) }, options.timeoutMs)) as unknown as Pg.QueryResult | Pg.QueryResult[];
        } catch (err) {
          if ((err as { code?: unknown }).code === 'QUERY_TIMEOUT') throw err;
          throw connectionError(err, url, source);
        }
        const results = Array.isArray(result) ? result : [result];
        return (results.filter((r) => r.fields.length > 0).at(-1)?.rows ?? []) as T[];
      });
    },
    // A listen once close() has begun would be dead: the listener is closing.
    listen: (channel, onPayload, options) => (ending ? Promise.reject(closedError('')) : listener.listen(channel, onPayload, options)),
    holdLock: (name, onLost) => (ending ? Promise.reject(closedError('')) : listener.holdLock(name, onLost)),
    close(options) {
      // A forced close may follow a close that waits (pool.end() may be called once): it fails what that
      // one waits for, and both resolve when the pool has ended.
      // A backend does not notice its client left: a statement blocked on a lock, or busy, would run to
      // its end and commit after its caller was told the store was closed (a worker's claim would lease
      // runs to a worker that is gone). Each one still running is terminated (over the terminations' connection).
      let terminated: Promise<unknown> = Promise.resolve();
      if (options?.force) {
        const err = closedError(' by force while this statement ran');
        const runningNow = [...running].flatMap(([client, { text, sentAt }]) => {
          const pid = (client as unknown as { processID?: unknown }).processID;
          return typeof pid === 'number' ? [{ pid, text, sentAt }] : [];
        });
        running.clear();
        for (const timer of deadlines) clearTimeout(timer);
        deadlines.clear();
        failForced(err);
        for (const fail of failers) fail(err);
        failers.clear();
        for (const client of clients) if (!terminators.has(client)) destroyConnection(client);
        listener.destroy();
        for (const { pid, text, sentAt } of runningNow) terminations.request(pid, text, sentAt);
        terminated = terminations.close({ force: true });
      }
      ending ??= (async () => {
        await Promise.race([Promise.allSettled([...inFlight]), forced.catch(() => {})]);
        await Promise.race([terminations.close(), forced.catch(() => {})]);
        await listener.close();
        // No statement waits for a connection now: a connection still being made is one a statement
        // given up at its deadline asked for, through a partition (its startup message, or the answer,
        // lost). pg-pool's end() waited for each until its connect timeout, 30 s after every statement
        // had failed (test/close-in-partition.test.ts). Given up after end() has begun, so that the
        // pool makes no new one for the next statement given up in its queue.
        const ended = pool.end();
        for (const client of connectingSince.keys())
          if (!terminators.has(client)) destroyConnection(client, closedError(' while this connection was being made'));
        await ended;
      })();
      // Forced: its connections are destroyed; a pool.end() that never resolves (a client pg-pool kept
      // after its connect threw) must not hold the stop.
      if (options?.force) {
        const done = Promise.all([ending, terminated]).then(() => {});
        return Promise.race([done, new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref())]);
      }
      return ending;
    },
  };
}

/**
 * Adds {@link PLANNER_SETTINGS} to a client's startup options, after the connection string's own
 * `options` (or `PGOPTIONS`), which they would otherwise replace: set as the backend starts, so no
 * statement of its own runs on a new connection. A `SET` sent from pg-pool's `onConnect` did, and a
 * backend terminated during it failed the statement waiting for the connection with an error carrying
 * no SQLSTATE (test/driver-faults.test.ts, the storm of terminations). Not by rewriting the URL: a
 * password with a lone "%" (`100%zz`, which pg takes as it is) makes pg-connection-string leave every
 * query value encoded, and the backend refused the options (`-c enable_seqscan%3Doff requires a value`).
 * pg reads the options from `connectionParameters` when it connects (pg 8, `Client.getStartupConf`);
 * test/database-errors.test.ts checks the settings reach the backend.
 */
function addPlannerOptions(client: Pg.Client): void {
  const params = (client as unknown as { connectionParameters?: { options?: string } }).connectionParameters;
  if (!params) return;
  const option = PLANNER_SETTINGS.map((setting) => `-c ${setting}`).join(' ');
  // Durability first, so that the connection string's own choice (an operator's, knowingly) comes after it and wins.
  params.options = [DURABILITY_SETTING, params.options, option].filter(Boolean).join(' ');
}

/**
 * Every commit is flushed to disk before Postgres answers it, whatever the server's default: with
 * `synchronous_commit = off` (a server, database or role setting made for throughput) a crash of
 * Postgres loses commits it had acknowledged — a signal answered `queued` was never applied, a run
 * whose `go` was lost waited for ever, a step's recorded start or result could vanish after its work.
 * `on` is the most durable value (with a synchronous standby it waits for the standby's flush too);
 * `options=-c synchronous_commit=…` in the connection string still chooses otherwise.
 */
const DURABILITY_SETTING = '-c synchronous_commit=on';

/** A stable name per statement text, so each connection prepares a statement once. */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `rmapp_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}
