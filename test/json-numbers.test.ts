/** Numbers JSON text holds that a double cannot keep: refused before they are stored rounded (src/rmapp/json-numbers.ts). */
import { expect, it } from 'vitest';
import { inexactNumber, inexactNumberMessage } from '../src/rmapp/json-numbers.ts';

it('finds integers a double rounds and numbers out of its range, outside strings only', () => {
  const cases: [string, string | null][] = [
    ['{"id":12345678901234567890123}', '12345678901234567890123'],
    ['[9007199254740993]', '9007199254740993'],
    ['{"n":-9007199254740993}', '-9007199254740993'],
    ['{"x":1e400}', '1e400'],
    ['{"x":-1e400,"y":1}', '-1e400'],
    ['{"k\\\\":99999999999999999999}', '99999999999999999999'],
    // Written as an integer with a fraction of zeros.
    ['[9007199254740993.0]', '9007199254740993.0'],
    ['[12345678901234567890123.000]', '12345678901234567890123.000'],
    // Kept: strings, safe integers, integers a double holds exactly, fractions and exponents in range.
    ['{"id":"12345678901234567890123"}', null],
    ['{"s":"a\\"1e999 99999999999999999999"}', null],
    ['[1,-0,2.5,-3e2,9007199254740991,-9007199254740991,9007199254740992,18014398509481984]', null],
    ['[0.1000000000000000055511151231257827,1e308,5e-324,1e300,5.000e20,9007199254740992.0,-0.0,0e5]', null],
    // An exponent or a fraction is a floating-point number by its notation: C's and numpy's 17 digits of 1e23.
    ['[9.9999999999999992e22,9007199254740993e0,9.007199254740993e15,9007199254740993.5]', null],
    // A power of two beyond 2^53 is exactly its double.
    ['[18446744073709551616]', null],
    [`[1.${'0'.repeat(100_000)}1]`, null],
  ];
  for (const [text, literal] of cases) expect(inexactNumber(text)?.literal ?? null, text).toBe(literal);
  expect(inexactNumber('{"x":1e400}')?.readAs).toBe('null');
});

it('names the number, what it would become and what to send instead', () => {
  const found = inexactNumber('{"id":12345678901234567890123}');
  if (!found) throw new Error('not found');
  expect(inexactNumberMessage('The input', found)).toBe(
    'The input holds the number 12345678901234567890123, which JSON numbers cannot keep exactly (they are doubles: integers beyond 9007199254740991 are rounded, and numbers past 1.8e308 become null); it would be stored as 1.2345678901234568e+22. Send it as a string.',
  );
});

it('reads a megabyte-long number past 2^53 (a fraction of zeros, then digits) and judges it', () => {
  // An adversarial pass: a regex trimming trailing zeros was quadratic — 3 s on 64 KiB, minutes on 1 MiB,
  // the service frozen meanwhile; this input would not finish within the test's timeout.
  const zeros = '0'.repeat(1_000_000);
  expect(inexactNumber(`{"a":1.${zeros}1e20}`)).toBeNull();
  expect(inexactNumber(`{"b":12345678901234567890123.${zeros}}`)?.literal.length).toBe(23 + 1 + 1_000_000);
  expect(inexactNumber(`{"c":12345678901234567890123.${zeros}1}`)).toBeNull();
});
