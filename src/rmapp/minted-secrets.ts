/**
 * Secrets the service makes as it runs, which no configured list holds: a GitHub App's installation
 * tokens, minted per repository for its API calls and for git's pushes (github/client.ts
 * `createGitHubAccess`). A test that base64'd its environment, or a git trace quoting its `Authorization:
 * Basic` header, carried the token into a comment or a log line in a form the token-shaped pattern does
 * not see; every masker (masking.ts `createMasker`) reads this list as well as its configured secrets, in
 * every form it knows, for as long as the token can be valid and {@link MINTED_SECRET_GRACE_MS} after.
 *
 * One list per process ({@link mintedSecrets}), because the maskers are many (the logger's, the GitHub
 * writes', the API's, the inspector's, the CLI's) and are built where the minting client is not known;
 * a test gives its own list to `createMasker` to keep its clock and its tokens to itself.
 */

/** How long a minted secret is still masked after it expires: clocks differ, and a log line about a failed push comes after it. */
export const MINTED_SECRET_GRACE_MS = 10 * 60_000;

/** GitHub's installation tokens last an hour: the lifetime assumed when GitHub's answer gives no `expires_at`. */
export const DEFAULT_MINTED_LIFETIME_MS = 60 * 60_000;

/** The secrets a process minted, each until it expires (plus {@link MINTED_SECRET_GRACE_MS}). */
export class MintedSecrets {
  private readonly until = new Map<string, number>();
  private changes = 0;
  private nextExpiry = Infinity;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Remembers `secret` until `expiresAt` (an ISO date, epoch milliseconds, or undefined: an hour from
   * now) and {@link MINTED_SECRET_GRACE_MS} after. A secret remembered again keeps the later end.
   *
   * @example
   * mintedSecrets.add(token, expiresAt); // from `auth({ type: 'installation' })`
   */
  add(secret: string, expiresAt?: string | number | null): void {
    if (!secret) return;
    const parsed = typeof expiresAt === 'number' ? expiresAt : expiresAt ? Date.parse(expiresAt) : NaN;
    const end = (Number.isFinite(parsed) ? parsed : this.now() + DEFAULT_MINTED_LIFETIME_MS) + MINTED_SECRET_GRACE_MS;
    const known = this.until.get(secret);
    if (known !== undefined && known >= end) return;
    this.until.set(secret, end);
    this.nextExpiry = Math.min(this.nextExpiry, end);
    if (known === undefined) this.changes += 1;
  }

  /**
   * A number that changes whenever the list does (a secret added or forgotten): a masker rebuilds its
   * forms only then. Forgets what expired first.
   */
  version(): number {
    if (this.now() >= this.nextExpiry) this.forgetExpired();
    return this.changes;
  }

  /** The secrets still remembered. */
  secrets(): string[] {
    if (this.now() >= this.nextExpiry) this.forgetExpired();
    return [...this.until.keys()];
  }

  private forgetExpired(): void {
    const now = this.now();
    let next = Infinity;
    for (const [secret, end] of this.until) {
      if (end <= now) {
        this.until.delete(secret);
        this.changes += 1;
      } else next = Math.min(next, end);
    }
    this.nextExpiry = next;
  }
}

/** The process's minted secrets: every masker reads them unless given another list. */
export const mintedSecrets = new MintedSecrets();
