/**
 * Numbers a JSON text holds that JavaScript cannot read exactly. `JSON.parse` reads every number as a
 * double: an integer beyond 2^53 − 1 (an id from another system, `12345678901234567890123`) comes back
 * rounded and would be stored, shown and used rounded, and one beyond the double's range (`1e400`)
 * becomes `Infinity`, which JSON then writes as `null`. Input that arrives as text (the API's bodies,
 * the CLI's arguments) is checked with {@link inexactNumber}, so the client is told instead of its data
 * changing silently. Below 2^53 fractions (`0.1`) are read as the nearest double, as every JSON reader
 * does; that is not refused.
 */

/** A number token: JSON's grammar (RFC 8259 §6), with the sign. */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * The first number of `text` (valid JSON or not; strings are skipped) that a double does not keep:
 * one beyond ±(2^53 − 1) whose digits JSON would not write back (`…993`, `…993.0`, `9.007199254740993e15`),
 * or one out of the double's range. Null when none.
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
    // Beyond 2^53 − 1 a double holds no fraction and not every integer: a literal whose digits are not
    // the digits JSON writes for the double it reads as (`…993`, `…993.0`, `9.007199254740993e15`,
    // 2^64 written out) comes back changed. `1e300` and `5.000e20` are their doubles' digits, and pass.
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER && significantDigits(literal) !== significantDigits(JSON.stringify(value)))
      return { literal, readAs: JSON.stringify(value) };
  }
  return null;
}

/** A numeral's significant digits: no sign, point, exponent, or leading and trailing zeros (`-0.0120e5` → `12`). */
function significantDigits(numeral: string): string {
  return numeral
    .replace(/[eE].*$/, '')
    .replace(/[-.]/g, '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
}

/** The message for {@link inexactNumber}'s finding in `what` (e.g. "the input"). */
export function inexactNumberMessage(what: string, found: { literal: string; readAs: string }): string {
  const literal = found.literal.length > 40 ? `${found.literal.slice(0, 40)}…` : found.literal;
  return (
    `${what} holds the number ${literal}, which JSON numbers cannot keep exactly (they are doubles: beyond ` +
    `9007199254740991 they keep about 16 digits, and past 1.8e308 become null); it would be stored as ${found.readAs}. Send it as a string.`
  );
}
