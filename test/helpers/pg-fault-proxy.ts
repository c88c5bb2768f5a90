/**
 * A TCP proxy in front of Postgres that terminates backends the way `pg_terminate_backend` does — a
 * FATAL ErrorResponse with SQLSTATE 57P01, then the socket closes — but at exact points of the wire
 * protocol, so driver faults that depend on timing become deterministic:
 * - `terminateAll()`: every open connection, busy or idle, at once;
 * - `cutFirstStatement(n)`: the first statement of each of the next `n` new connections, right after
 *   the startup handshake (where postgres.js used to fetch its array types);
 * - `cutMatching(re, times?)`: every statement whose text matches (or only the next `times` of them);
 * - `freeze()`: the server stops answering without closing anything (a silent network loss): nothing
 *   is forwarded either way on open or new connections, and what was sent meanwhile is dropped;
 * - `dropAnswers()`: what clients send still reaches the server, but nothing it answers reaches them
 *   (a one-way partition): a statement is applied and its answer lost;
 * - `heal()`: forwarding starts again after `freeze()` or `dropAnswers()` (a partition that healed).
 *   Bytes dropped meanwhile stay lost: a connection that sent or was sent anything is out of step (as a
 *   client that gave up on it would treat it), one that stayed idle works again; a connection whose
 *   startup message or its answer was dropped is never answered;
 * - `silenceOpen()`: the connections open now go silent both ways, as `freeze()`; new ones work;
 * - `holdNewConnections()`: connections made from now on are accepted and never answered; open ones
 *   go on working.
 * A cut statement never reaches Postgres.
 */
import net from 'node:net';

/** What `pg_terminate_backend` sends a client before closing its socket. */
export function terminationMessage(): Buffer {
  const fields: [string, string][] = [
    ['S', 'FATAL'],
    ['V', 'FATAL'],
    ['C', '57P01'],
    ['M', 'terminating connection due to administrator command'],
    ['R', 'ProcessInterrupts'],
  ];
  const body = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** The SQL text of a simple Query ('Q') or a Parse ('P') message, else null. */
function statementText(type: string, body: Buffer): string | null {
  if (type === 'Q') return body.toString('utf8', 0, Math.max(0, body.indexOf(0)));
  if (type === 'P') {
    const nameEnd = body.indexOf(0);
    return body.toString('utf8', nameEnd + 1, body.indexOf(0, nameEnd + 1));
  }
  return null;
}

/** A running proxy; see the module comment. */
export interface FaultProxy {
  /** `postgres://` URL of the proxy for a database on the target server. */
  url(database: string): string;
  terminateAll(): number;
  cutFirstStatement(connections: number): void;
  cutMatching(pattern: RegExp | null, times?: number): void;
  freeze(): void;
  /** Statements reach the server; its answers are dropped (see the module comment). */
  dropAnswers(): void;
  /** Undoes {@link FaultProxy.freeze} and {@link FaultProxy.dropAnswers}: bytes flow again (those dropped meanwhile stay lost). */
  heal(): void;
  /** The connections open now stop answering (a partition that kept their sockets); new ones work. */
  silenceOpen(): void;
  holdNewConnections(): void;
  /** Statements cut so far, with the text of each. */
  readonly cuts: string[];
  /** Every statement's text that reached the proxy (simple queries and Parse messages), in order. */
  readonly seen: string[];
  /** Connections accepted so far. */
  readonly connections: () => number;
  /**
   * Startup messages forwarded to the server so far: a connection accepted during a freeze whose startup
   * message arrives after the heal is counted when it is forwarded, so "made after the heal" is read here.
   */
  readonly handshakes: () => number;
  close(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 in front of `target` (default: the machine's Postgres), on
 * `listenPort` (default: a free one; a closed proxy's port to bring its database back where its clients look for it).
 */
export async function startFaultProxy(target = { host: '127.0.0.1', port: 5432 }, listenPort = 0): Promise<FaultProxy> {
  const open = new Set<{ client: net.Socket; terminate: () => void; silence?: () => void }>();
  const cuts: string[] = [];
  const seen: string[] = [];
  let accepted = 0;
  let handshakes = 0;
  let firstStatementCuts = 0;
  let matching: RegExp | null = null;
  let matchesLeft = Infinity;
  let frozen = false;
  let answersDropped = false;
  let holdingNew = false;

  const server = net.createServer((client) => {
    accepted += 1;
    if (holdingNew) {
      const entry = { client, terminate: () => client.destroy() };
      open.add(entry);
      client.on('error', () => {});
      client.on('close', () => open.delete(entry));
      return;
    }
    const upstream = net.connect(target.port, target.host);
    let pending = Buffer.alloc(0);
    let started = false;
    let statements = 0;
    let cutFirst = false;
    let closed = false;
    let silent = false;
    const terminate = () => {
      if (closed) return;
      closed = true;
      open.delete(entry);
      upstream.destroy();
      client.end(terminationMessage());
    };
    const entry = { client, terminate, silence: () => void (silent = true) };
    open.add(entry);
    upstream.on('data', (d) => frozen || answersDropped || silent || client.write(d));
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.end());
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      open.delete(entry);
      upstream.destroy();
    });
    client.on('data', (chunk) => {
      if (closed || frozen || silent) return;
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          if (pending.length < 4) return;
          const len = pending.readInt32BE(0);
          if (pending.length < len) return;
          upstream.write(pending.subarray(0, len));
          pending = pending.subarray(len);
          started = true;
          handshakes += 1;
          if (firstStatementCuts > 0) {
            firstStatementCuts -= 1;
            cutFirst = true;
          }
          continue;
        }
        if (pending.length < 5) return;
        const len = pending.readInt32BE(1);
        if (pending.length < len + 1) return;
        const type = String.fromCharCode(pending[0] ?? 0);
        const text = statementText(type, pending.subarray(5, len + 1));
        if (text !== null) {
          seen.push(text);
          statements += 1;
          const matched = matching?.test(text) === true && matchesLeft > 0;
          if ((cutFirst && statements === 1) || matched) {
            if (matched) matchesLeft -= 1;
            cuts.push(text);
            return terminate();
          }
        }
        upstream.write(pending.subarray(0, len + 1));
        pending = pending.subarray(len + 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    terminateAll() {
      const all = [...open];
      for (const c of all) c.terminate();
      return all.length;
    },
    cutFirstStatement(connections) {
      firstStatementCuts = connections;
    },
    cutMatching(pattern, times = Infinity) {
      matching = pattern;
      matchesLeft = times;
    },
    freeze() {
      frozen = true;
    },
    dropAnswers() {
      answersDropped = true;
    },
    heal() {
      frozen = false;
      answersDropped = false;
    },
    silenceOpen() {
      for (const c of open) c.silence?.();
    },
    holdNewConnections() {
      holdingNew = true;
    },
    cuts,
    seen,
    connections: () => accepted,
    handshakes: () => handshakes,
    async close() {
      for (const c of open) c.client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
