/**
 * GitHub logins compared as GitHub compares them: the one rule for telling the bot's own account,
 * comments and pull requests from a person's (writes.ts, head-branch.ts, issue-branch-owner.ts, the
 * webhook's event.ts).
 */

/**
 * Two GitHub logins compare equal: ASCII case folded only, as GitHub's logins are ASCII and compared
 * case-insensitively. `toLowerCase` folds more (the Kelvin sign `K` U+212A to `k`, `İ` to `i̇`), so a
 * look-alike would match a login it is not.
 *
 * @example
 * sameLogin('RMAPP[bot]', 'rmapp[bot]'); // true
 * sameLogin('rmapp-\u212a[bot]', 'rmapp-k[bot]'); // false
 */
export function sameLogin(a: string | null | undefined, b: string | null | undefined): boolean {
  const fold = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return typeof a === 'string' && typeof b === 'string' && a !== '' && fold(a) === fold(b);
}
