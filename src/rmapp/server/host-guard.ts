/**
 * DNS-rebinding and cross-site defence for `rmapp serve`: which Host and Origin headers are the
 * service's own.
 *
 * A rebinding page (its name re-pointed at 127.0.0.1 after it loaded) is same-origin with the service
 * in the browser's eyes, so it can read the API and POST to it — but its requests still carry its own
 * name in `Host`. The service therefore answers only to its own names: the bound host, localhost,
 * 127.0.0.1 and [::1] (each with the port), the host of `server.publicUrl` (RMAPP_PUBLIC_URL) and any
 * `allowedHosts`.
 *
 * The check is enforced when the service is bound to loopback or has no dashboard token. Bound beyond
 * loopback the token is mandatory (config refuses to start without it) and is what defends: a rebinding
 * page runs on the attacker's origin, so the browser sends it neither the host-only SameSite=Strict
 * `rmapp_token` cookie nor an Authorization header, and without them it reads and changes nothing.
 * There the names the service is reached by (pod IPs for probes and scrapers, a proxy's upstream name)
 * cannot be known, so refusing unknown Hosts would only break deployments.
 *
 * Origin is checked on every state-changing request whatever the binding: a browser's POST names its
 * page's origin, which must be one of the names above — or, where Host is not enforced, the request's
 * own Host. A request without Origin (curl, scripts) passes: browsers always send it on a POST, and
 * the `X-Rmapp-Request` header still stops cross-site forms.
 */
import { isLoopback } from '../config.ts';

/** Host values (`name[:port]`, lower case, default port omitted) this service answers to. */
export interface HostPolicy {
  /** Whether unknown Hosts are refused (see the module comment). */
  enforced: boolean;
  /** The accepted Host values, for error messages. */
  names: string[];
  /** Whether a request with this Host header may be served. */
  allowsHost(host: string | undefined): boolean;
  /** Whether a request with this Origin header (on a request with Host `host`) comes from the service's own pages. */
  allowsOrigin(origin: string | undefined, host: string | undefined): boolean;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const HOST_SYNTAX = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * A Host header in canonical form (`name[:port]`, lower case, `:80` dropped), or null when it is not
 * one (paths, userinfo, spaces: anything that is not a host name or IP with an optional port).
 */
export function canonicalHost(value: string, defaultPort = 80): string | null {
  if (!HOST_SYNTAX.test(value)) return null;
  try {
    const url = new URL(`http://${value}`);
    const port = url.port === '' ? String(defaultPort) : url.port;
    return port === '80' ? url.hostname : `${url.hostname}:${port}`;
  } catch {
    return null;
  }
}

/** Builds the policy once the server listens (the port is known then). */
export function hostPolicy(options: {
  host: string;
  port: number;
  publicUrl?: string | undefined;
  allowedHosts?: readonly string[] | undefined;
  dashboardToken?: string | undefined;
}): HostPolicy {
  const bound = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  const names = new Set<string>();
  const add = (value: string | null) => value && names.add(value);
  for (const name of [...LOOPBACK_NAMES, bound]) add(canonicalHost(`${name}:${options.port}`));
  if (options.publicUrl) {
    const url = new URL(options.publicUrl);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    add(canonicalHost(`${url.hostname}:${port}`));
    if (!url.port) add(canonicalHost(url.hostname)); // a proxy may forward the bare name
  }
  for (const extra of options.allowedHosts ?? []) add(canonicalHost(extra) ?? extra.toLowerCase());

  const enforced = isLoopback(options.host.replace(/^\[(.*)\]$/, '$1')) || !options.dashboardToken;
  const known = (host: string | undefined) => {
    const canonical = host === undefined ? null : canonicalHost(host);
    return canonical !== null && names.has(canonical);
  };
  return {
    enforced,
    names: [...names],
    allowsHost: (host) => !enforced || known(host),
    allowsOrigin(origin, host) {
      if (origin === undefined) return true; // not a browser (curl, scripts): X-Rmapp-Request still guards CSRF
      let url: URL;
      try {
        url = new URL(origin);
      } catch {
        return false; // "null" (sandboxed frames, file:) and garbage
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
      const port = url.port || (url.protocol === 'https:' ? '443' : '80');
      // https://name is also the bare Host "name" a TLS proxy forwards.
      const candidates = [canonicalHost(`${url.hostname}:${port}`), url.port ? null : canonicalHost(url.hostname)].filter(
        (c): c is string => c !== null,
      );
      if (candidates.some((c) => names.has(c))) return true;
      // Unenforced (beyond loopback with a token): the page's own origin is the request's Host.
      const own = host === undefined ? null : canonicalHost(host);
      return !enforced && own !== null && candidates.includes(own);
    },
  };
}
