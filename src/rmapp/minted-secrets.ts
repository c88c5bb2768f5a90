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

/** One change of a {@link MintedSecrets} list: a secret added (first remembered, or again after it was forgotten) or forgotten. */
export interface MintedChange {
  secret: string;
  added: boolean;
  /** The list's version once this change was made: for an added secret, where it stands in the list's order. */
  version: number;
}

/** The secrets a process minted, each until it expires (plus {@link MINTED_SECRET_GRACE_MS}). */
export class MintedSecrets {
  /** Each secret's end, and the version at which it was added (the list's order). */
  private readonly until = new Map<string, { end: number; added: number }>();
  private changes = 0;
  private nextExpiry = Infinity;
  /** The changes since version {@link logBase}: a masker catches up by them, not by reading the whole list. */
  private log: MintedChange[] = [];
  private logBase = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Remembers `secret` until `expiresAt` (an ISO date, epoch milliseconds, or undefined: an hour from
   * now) and {@link MINTED_SECRET_GRACE_MS} after. A secret remembered again keeps the later end.
   * Returns whether `secret` is new to the list (not remembered until now): what the minting side warns
   * about once per token (github/client.ts).
   *
   * @example
   * mintedSecrets.add(token, expiresAt); // from `auth({ type: 'installation' })`
   */
  add(secret: string, expiresAt?: string | number | null): boolean {
    if (!secret) return false;
    const parsed = typeof expiresAt === 'number' ? expiresAt : expiresAt ? Date.parse(expiresAt) : NaN;
    const end = (Number.isFinite(parsed) ? parsed : this.now() + DEFAULT_MINTED_LIFETIME_MS) + MINTED_SECRET_GRACE_MS;
    const known = this.until.get(secret);
    if (known !== undefined && known.end >= end) return false;
    this.nextExpiry = Math.min(this.nextExpiry, end);
    if (known !== undefined) {
      known.end = end;
      return false;
    }
    this.changed(secret, true);
    this.until.set(secret, { end, added: this.changes });
    return true;
  }

  /**
   * A number that changes whenever the list does (a secret added or forgotten): a masker rebuilds its
   * forms only then. Forgets what expired first.
   */
  version(): number {
    if (this.now() >= this.nextExpiry) this.forgetExpired();
    return this.changes;
  }

  /** The secrets still remembered, in the order they were added. */
  secrets(): string[] {
    if (this.now() >= this.nextExpiry) this.forgetExpired();
    return [...this.until.keys()];
  }

  /**
   * The secrets still remembered with the version at which each was added (ascending: the order of
   * {@link secrets}), and the version they make.
   */
  entries(): { version: number; entries: [secret: string, added: number][] } {
    if (this.now() >= this.nextExpiry) this.forgetExpired();
    return { version: this.changes, entries: [...this.until].map(([secret, { added }]) => [secret, added]) };
  }

  /**
   * The changes made after `version` and the version they lead to, or null when they are no longer
   * kept (then read {@link entries}). A masker updates its index by them: minting 1,000 tokens one by
   * one rebuilt every form of every token at each (bench/README.md, "thirty-sixth session"). Forgets
   * nothing itself: call {@link version} first.
   */
  changesSince(version: number): { version: number; changes: readonly MintedChange[] } | null {
    if (version < this.logBase || version > this.changes) return null;
    return { version: this.changes, changes: this.log.slice(version - this.logBase) };
  }

  private changed(secret: string, added: boolean): void {
    this.changes += 1;
    this.log.push({ secret, added, version: this.changes });
    // Kept to about twice the list: a reader further behind reads the list whole, which costs no more.
    if (this.log.length > 2 * this.until.size + 1024) {
      this.logBase += this.log.length;
      this.log = [];
    }
  }

  private forgetExpired(): void {
    const now = this.now();
    let next = Infinity;
    for (const [secret, { end }] of this.until) {
      if (end <= now) {
        this.until.delete(secret);
        this.changed(secret, false);
      } else next = Math.min(next, end);
    }
    this.nextExpiry = next;
  }
}

/** The process's minted secrets: every masker reads them unless given another list. */
export const mintedSecrets = new MintedSecrets();
