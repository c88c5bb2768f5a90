/**
 * The network of a sandbox with an allowlist: the sandbox has its own network namespace with only a
 * loopback device, and a forwarder inside (`net-forwarder.mjs`) hands every connection to
 * 127.0.0.1:3128 to this proxy over a Unix socket bound into the sandbox. The proxy is the only way
 * out: it serves HTTP `CONNECT host:port` (HTTPS, git) and absolute-form `GET http://…` requests,
 * only to names on the allowlist, resolves them itself and refuses loopback, private, link-local
 * (cloud metadata) and other special addresses unless the operator allowed private networks for
 * their own names (never for a repository's) — so
 * an allowlisted name that resolves to 127.0.0.1 still cannot reach Postgres or the service — and
 * opens only ports 80 and 443.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { BlockList, connect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { gatedLookup, type GatedLookup } from './lookup-gate.ts';

// Two lists: node's BlockList also matches IPv4 addresses against IPv6 rules (as IPv4-mapped), so one
// list with ::ffff:0:0/96 would refuse every IPv4 address.
const SPECIAL_V4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  SPECIAL_V4.addSubnet(net, prefix, 'ipv4');
const SPECIAL_V6 = new BlockList();
for (const [net, prefix] of [
  ['::', 96],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  SPECIAL_V6.addSubnet(net, prefix, 'ipv6');

/** Ports a name on the allowlist opens: HTTP and HTTPS (git, registries, APIs); `name:port` opens another. */
export const ALLOWED_PORTS = new Set([80, 443]);

/**
 * True when `host:port` is on `allow`: a rule `name` opens ports 80 and 443, `name:port` that port
 * only; names match exactly, case-insensitive, and `*.example.com` matches its subdomains.
 */
export function hostAllowed(host: string, allow: readonly string[], port = 443): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return allow.some((rule) => {
    const m = /^(.*?)(?::(\d+))?$/.exec(rule.toLowerCase().trim()) as RegExpExecArray;
    const name = m[1] as string;
    const ports = m[2] ? [Number(m[2])] : [...ALLOWED_PORTS];
    if (!ports.includes(port)) return false;
    return name.startsWith('*.') ? h.endsWith(name.slice(1)) && h.length > name.length - 1 : h === name;
  });
}

/** True for a port a connection can be opened to (1–65535): what node's `connect` takes without throwing, but 0. */
export function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65_535;
}

/** True for addresses a sandbox must not reach unless private networks are allowed. */
export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return SPECIAL_V4.check(address, 'ipv4');
  if (family === 6) return SPECIAL_V6.check(address, 'ipv6');
  return true;
}

/**
 * How many refusals {@link EgressProxy.refused} keeps, and of how many characters each. The proxy runs in
 * the service's process for as long as the sandboxed command does, and the command decides how many
 * requests it sends and how long their names are: kept whole, 100,000 refusals of 7,000-character names
 * grew the service by 790 MB in 23 s — past the sandbox's memory limit, which bounds the command only
 * (test/sb-egress-refusals-bounded.test.ts).
 */
export const REFUSALS_KEPT = 100;
const REFUSAL_CHARS = 500;

/**
 * Connections one proxy (one sandboxed command) holds at once: more than a package manager's parallel
 * downloads, far fewer than the service's descriptor limit. A sandbox's limits bound its own processes,
 * not the descriptors its connections cost the service.
 */
export const MAX_CONNECTIONS = 256;

export interface EgressProxy {
  /** Connections refused, `host:port — reason` (for the run's log and the tests): the first {@link REFUSALS_KEPT}, each cut short. */
  readonly refused: string[];
  close(): Promise<void>;
}

/** Starts the proxy on the Unix socket `socketPath`. */
export async function startEgressProxy(
  socketPath: string,
  /**
   * `allow`: every rule of the sandbox; `allowPrivate`: the rules whose names may resolve to loopback,
   * private or link-local addresses (the operator's, when `sandbox.allowPrivateNetwork` is on).
   */
  options: {
    allow: readonly string[];
    allowPrivate: readonly string[];
    /** The gated lookup to use (tests give their own gate); default: the process's, {@link gatedLookup}. */
    lookup?: GatedLookup;
  },
): Promise<EgressProxy> {
  const lookup = options.lookup ?? gatedLookup;
  const refused: string[] = [];
  const sockets = new Set<Socket | Duplex>();
  const closing = new AbortController();
  // This proxy, to the gate: it shares the lookups fairly between proxies, not between connections.
  const asker = {};

  // `gone`: the connection asking closed. Its lookup still queued leaves the gate: only the proxy's close
  // took it out, so a command that opened and closed connections to names that never answer queued
  // lookups without bound, and every other command's waited behind them (test/rv-lookup-gate-connection-gone.test.ts).
  const resolve = async (host: string, port: number, gone: AbortSignal): Promise<string> => {
    const name = host.replace(/^\[|\]$/g, '');
    // Before the allowlist: a rule may name any five digits (`example.com:99999`, which a repository's
    // .github/rmapp.yml can write), and `connect` throws on a port past 65535 — thrown in the promise's
    // handler, an unhandled rejection that took the whole service down.
    if (!validPort(port)) throw new Refusal(`port ${port} is not a TCP port (1 to 65535)`);
    if (!hostAllowed(name, options.allow, port)) {
      throw new Refusal(
        `${name}:${port} is not on the sandbox's network allowlist (sandbox.network, agent.network or the repository's .github/rmapp.yml; a name opens ports 80 and 443, name:port another)`,
      );
    }
    // A few lookups at a time for the whole process, fair between proxies, and none left waiting once this
    // proxy closed (lookup-gate.ts).
    const addresses = isIP(name) ? [{ address: name }] : await lookup(name, AbortSignal.any([closing.signal, gone]), asker).catch(() => []);
    if (!addresses.length) throw new Refusal(`${name} does not resolve`);
    const mayBePrivate = hostAllowed(name, options.allowPrivate, port);
    const usable = addresses.map((a) => a.address).filter((a) => mayBePrivate || !isSpecialAddress(a));
    if (!usable.length)
      throw new Refusal(
        `${name} resolves to a loopback, private or link-local address (${addresses[0]?.address}); ${
          options.allowPrivate.length
            ? "only the operator's own names (sandbox.network, agent.network) may, not a repository's"
            : 'set sandbox.allowPrivateNetwork to allow it for the names in sandbox.network'
        }`,
      );
    return usable[0] as string;
  };
  const refuse = (target: string, err: unknown) => {
    const reason = err instanceof Refusal ? err.message : (err as Error).message;
    if (refused.length < REFUSALS_KEPT) {
      const entry = `${target} — ${reason}`;
      // Its start and end: a long name is in the middle of the reason, which ends saying why.
      refused.push(entry.length > REFUSAL_CHARS ? `${entry.slice(0, 200)}…${entry.slice(-(REFUSAL_CHARS - 201))}` : entry);
    }
    return `rmapp sandbox: ${target} refused: ${reason}\n`;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('only http:// in absolute form (use CONNECT for https)');
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`rmapp sandbox: ${(err as Error).message}\n`);
      return;
    }
    const port = Number(url.port || 80);
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    resolve(url.hostname, port, gone.signal).then(
      (address) => {
        const upstream = httpRequest(
          {
            host: address,
            port,
            method: req.method,
            path: `${url.pathname}${url.search}`,
            headers: { ...req.headers, host: url.host },
            setHost: false,
          },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        upstream.on('error', (err) => {
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`rmapp sandbox: ${url.host}: ${err.message}\n`);
        });
        req.pipe(upstream);
      },
      (err: unknown) => res.writeHead(403, { 'content-type': 'text/plain' }).end(refuse(url.host, err)),
    );
  });
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const target = req.url ?? '';
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(target);
    if (!m) {
      client.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\nrmapp sandbox: CONNECT needs host:port\n`);
      return;
    }
    const port = Number(m[2]);
    const gone = new AbortController();
    // 'end' too: node's http server allows a half-open socket, so a client gone shows as 'end' first.
    client.on('end', () => gone.abort());
    client.on('close', () => gone.abort());
    resolve(m[1] as string, port, gone.signal).then(
      (address) => {
        const upstream = connect(port, address, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => {
          client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
          upstream.destroy();
        });
      },
      (err: unknown) => client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\n${refuse(target, err)}`),
    );
  });
  // Each connection is a descriptor of the service's (a tunnel's, two): a command holding thousands took
  // the service to EMFILE. Past the bound node closes a new connection at once (test/sb-egress-connections-bounded.test.ts).
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(socketPath, () => ok());
  });
  return {
    refused,
    close: () =>
      new Promise<void>((ok) => {
        closing.abort();
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

class Refusal extends Error {}
