/**
 * Which of git's failures a step's retry may fix, read from git's error output: the service's own git
 * commands (workspace.ts `Workspaces`) fail with a transient or a permanent error by it.
 */
/**
 * Whether git's error output tells of a failure worth the step's retry: DNS, a refused, reset, closed or
 * timed-out connection, TLS cut short, a remote that hung up mid-transfer (`RPC failed`, `early EOF`,
 * `the remote end hung up unexpectedly` — a push GitHub may even have received: the retry's push of the
 * same commit is then a no-op), a server error or a race on GitHub's side (`Internal Server Error`,
 * `cannot lock ref`), an HTTP 5xx, 408 or 429, a rate limit. What trying again cannot change is
 * permanent, whatever else the output says: HTTP 401/403/404, failed authentication, a certificate git
 * does not trust, a malformed URL or proxy, a push declined or too large, a local error. `unable to
 * access` alone decides nothing: git says it of a URL whatever curl's reason, and of a config file it
 * cannot read (an unreadable `HOME`) before a local error.
 */
export function gitFailureIsTransient(stderr: string): boolean {
  if (GIT_REFUSED.test(stderr)) return false;
  if (/secondary rate limit|rate limit exceeded/i.test(stderr)) return true;
  const status =
    /returned error: (\d{3})/.exec(stderr)?.[1] ??
    /RPC failed; HTTP (\d{3})/.exec(stderr)?.[1] ??
    /Received HTTP code (\d{3}) from proxy/.exec(stderr)?.[1];
  if (status) return /^(5\d\d|408|429)$/.test(status);
  return GIT_NETWORK.test(stderr);
}

/** Output of a git failure that no retry fixes ({@link gitFailureIsTransient}). */
const GIT_REFUSED =
  /pack exceeds maximum allowed size|hook declined|Authentication failed|Permission to \S+ denied|could not read (Username|Password)|SSL certificate problem|certificate verif|verify locations|issuer certificate|URL using bad|not supported or disabled in libcurl|Unsupported proxy|\.lock': File exists|exists; cannot create/i;

/** Output of a git failure on the way to the remote or on its side ({@link gitFailureIsTransient}). */
const GIT_NETWORK =
  /Could not resolve (host|proxy)|Connection (refused|reset|timed out|closed by)|Network is unreachable|kex_exchange_identification|early EOF|remote end hung up|RPC failed|unexpected disconnect|Empty reply from server|Failed to connect|(Recv|Send) failure|Operation timed out|transfer closed|bytes of body are still expected|was not closed cleanly|gnutls_handshake|SSL_(read|write|connect)|TLS connect|Internal Server Error|cannot lock ref|temporarily unavailable|try again later|Proxy CONNECT aborted|HTTP2 framing layer|HTTP\/2 stream \d+ was reset|Resolving timed out|\(failure\)|fatal error in commit_refs/i;
