/**
 * Numbers a JSON text holds that JavaScript cannot read exactly. `JSON.parse` reads every number as a
 * double: an integer beyond 2^53 − 1 (an id from another system, `12345678901234567890123`) comes back
 * rounded and would be stored, shown and used rounded, and one beyond the double's range (`1e400`)
 * becomes `Infinity`, which JSON then writes as `null`. Input that arrives as text (the API's bodies,
 * the CLI's arguments) is checked with {@link inexactNumber} before it is parsed, so the client is
 * told instead of its data changing silently. Fractions (`0.1`) are read as the nearest double, as
 * every JSON reader does; that is not refused.
 */

/** A number token: JSON's grammar (RFC 8259 §6), with the sign. */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * The first number of `text` (valid JSON or not; strings are skipped) that a double does not keep:
 * an integer literal beyond ±(2^53 − 1) that is not exactly a double, or any number out of the
 * double's range. Null when none.
 */
export function inexactNumber(text: string): { literal: string; readAs: string } | null {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string, escapes included.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      continue;
    }
    if (c !== 0x2d /* - */ && (c < 0x30 || c > 0x39)) continue;
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (!match) continue;
    const literal = match[0];
    i += literal.length - 1;
    const value = Number(literal);
    if (!Number.isFinite(value)) return { literal, readAs: JSON.stringify(value) };
    // An integer literal that is not the double it reads as (beyond 2^53 − 1, most are not).
    if (!/[.eE]/.test(literal) && !Number.isSafeInteger(value) && BigInt(literal) !== BigInt(value))
      return { literal, readAs: JSON.stringify(value) };
  }
  return null;
}

/** The message for {@link inexactNumber}'s finding in `what` (e.g. "the input"). */
export function inexactNumberMessage(what: string, found: { literal: string; readAs: string }): string {
  const literal = found.literal.length > 40 ? `${found.literal.slice(0, 40)}…` : found.literal;
  return (
    `${what} holds the number ${literal}, which JSON numbers cannot keep exactly (they are doubles: integers beyond ` +
    `9007199254740991 are rounded, and larger numbers become null); it would be stored as ${found.readAs}. Send it as a string.`
  );
}
