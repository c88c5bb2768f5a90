/**
 * Numbers a JSON text holds that JavaScript cannot read exactly. `JSON.parse` reads every number as a
 * double: an integer beyond 2^53 − 1 (an id from another system, `12345678901234567890123`) comes back
 * rounded and would be stored, shown and used rounded, and one beyond the double's range (`1e400`)
 * becomes `Infinity`, which JSON then writes as `null`. Input that arrives as text (the API's bodies,
 * the CLI's arguments) is checked with {@link inexactNumber}, so the client is told instead of its data
 * changing silently. A fraction or an exponent (`0.1`, `9.9999999999999992e22`) is read as the nearest
 * double, as every JSON reader does; that is not refused.
 */

/** A number token: JSON's grammar (RFC 8259 §6), with the sign. */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * The first number of `text` (valid JSON or not; strings are skipped) that a double does not keep: an
 * integer in plain digits beyond ±(2^53 − 1) that is not exactly a double (`…993`, `…993.0`), or any
 * number out of the double's range. Null when none.
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
    // An integer in plain digits (`…993`, `…993.0`) beyond 2^53 − 1 that is not exactly its double: an id
    // from another system, rounded. A number written with an exponent, or with a fraction, is a
    // floating-point number by its own notation (`9.9999999999999992e22` is how C and numpy write 1e23),
    // read as the nearest double as every JSON reader does.
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
      const exact = plainInteger(literal);
      if (exact !== null && exact !== BigInt(value)) return { literal, readAs: JSON.stringify(value) };
    }
  }
  return null;
}

/**
 * A literal's value when it is written as an integer — digits, and perhaps a fraction of zeros only — or
 * null. Called for finite values only, so its integer part has at most 309 digits; the fraction is read
 * once, however long.
 */
function plainInteger(literal: string): bigint | null {
  if (/[eE]/.test(literal)) return null;
  const point = literal.indexOf('.');
  if (point >= 0) for (let i = point + 1; i < literal.length; i++) if (literal.charCodeAt(i) !== 0x30) return null;
  return BigInt(point >= 0 ? literal.slice(0, point) : literal);
}

/** The message for {@link inexactNumber}'s finding in `what` (e.g. "the input"). */
export function inexactNumberMessage(what: string, found: { literal: string; readAs: string }): string {
  const literal = found.literal.length > 40 ? `${found.literal.slice(0, 40)}…` : found.literal;
  return (
    `${what} holds the number ${literal}, which JSON numbers cannot keep exactly (they are doubles: integers beyond ` +
    `9007199254740991 are rounded, and numbers past 1.8e308 become null); it would be stored as ${found.readAs}. Send it as a string.`
  );
}
