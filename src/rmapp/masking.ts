/**
 * One masking function for everything that leaves the process: GitHub comments and replies, the
 * JSON API (and so the dashboard), logs, the Stately inspector stream and artifacts served. It masks
 * the configured secret values (and the forms git and HTTP carry them in), anything that looks like a
 * GitHub token or a private key, credentials in URLs and authorization headers, and — in objects —
 * the values of secret-looking keys. Masking is the second line: the sandbox keeps the secrets away
 * from untrusted code in the first place (README, "Sandbox and threat model").
 */

export const MASK = '[REDACTED]';

const PATTERNS: RegExp[] = [
  // GitHub tokens: classic and fine-grained personal, OAuth, user-to-server, server-to-server, refresh.
  /\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})\b/g,
  // PEM private keys (RSA, EC, PKCS#8, OpenSSH), also with escaped newlines.
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g,
  // Authorization headers and the `x-access-token:<token>` git form.
  /\b(?:Bearer|Basic)\s+[A-Za-z0-9+/=._~-]{16,}/gi,
  /\bauthorization:\s*token\s+[^\s"']+/gi,
  /x-access-token:[^@\s"']+/gi,
];
/** `scheme://user:password@host` → `scheme://user:[REDACTED]@host`. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@"']+):[^\s@/"']+@/gi;
const SECRET_KEY = /token|secret|password|passwd|private.?key|authorization|api.?key|credential/i;

export interface Masker {
  /** The text with every secret masked. */
  text(text: string): string;
  /** A deep copy of a JSON-like value with every string masked and secret-looking keys' values replaced. */
  value<T>(value: T): T;
}

/**
 * A masker for these secret values (shorter than 6 characters are ignored: masking `main` would
 * garble every message). A value's base64 form and its git `x-access-token:` header form are masked too.
 */
export function createMasker(secrets: readonly (string | null | undefined)[] = []): Masker {
  const values = new Set<string>();
  for (const s of secrets) {
    if (!s || s.length < 6) continue;
    values.add(s);
    values.add(Buffer.from(s).toString('base64'));
    values.add(Buffer.from(`x-access-token:${s}`).toString('base64'));
    // A PEM key also travels with escaped newlines (JSON, env files).
    if (s.includes('\n')) values.add(s.replaceAll('\n', '\\n'));
  }
  const sorted = [...values].sort((a, b) => b.length - a.length);
  const text = (input: string): string => {
    let out = input;
    for (const v of sorted) if (out.includes(v)) out = out.split(v).join(MASK);
    for (const p of PATTERNS) out = out.replace(p, MASK);
    return out.replace(URL_PASSWORD, `$1:${MASK}@`);
  };
  // `path`: the objects being walked (a cycle is cut; an object met twice elsewhere is copied twice).
  const walk = (v: unknown, path: Set<object>): unknown => {
    if (typeof v === 'string') return text(v);
    if (!v || typeof v !== 'object' || v instanceof Date) return v;
    if (path.has(v) || path.size > 32) return '[…]';
    path.add(v);
    try {
      // An Error's message and stack are not enumerable: kept as pino's error serializer shows them.
      if (v instanceof Error) return walk({ ...v, type: v.name, message: v.message, stack: v.stack, ...(v.cause !== undefined ? { cause: v.cause } : {}) }, path);
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return walk((v as { toJSON(): unknown }).toJSON(), path);
      if (Array.isArray(v)) return v.map((x) => walk(x, path));
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) && typeof x === 'string' && x ? MASK : walk(x, path);
      return out;
    } finally {
      path.delete(v);
    }
  };
  return { text, value: <T>(value: T) => walk(value, new Set()) as T };
}
