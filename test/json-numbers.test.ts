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
    // However written: with a fraction or an exponent, or a power of two JSON writes back otherwise.
    ['[9007199254740993.0]', '9007199254740993.0'],
    ['[9007199254740993e0]', '9007199254740993e0'],
    ['[9.007199254740993e15]', '9.007199254740993e15'],
    ['[12345678901234567890123.0]', '12345678901234567890123.0'],
    ['[18446744073709551616]', '18446744073709551616'],
    // Kept: strings, safe integers, integers a double holds exactly, fractions and exponents in range.
    ['{"id":"12345678901234567890123"}', null],
    ['{"s":"a\\"1e999 99999999999999999999"}', null],
    ['[1,-0,2.5,-3e2,9007199254740991,-9007199254740991,9007199254740992,18014398509481984]', null],
    ['[0.1000000000000000055511151231257827,1e308,5e-324,1e300,5.000e20,9007199254740992.0,-0.0,0e5]', null],
    [`[1.${'0'.repeat(100_000)}1]`, null],
  ];
  for (const [text, literal] of cases) expect(inexactNumber(text)?.literal ?? null, text).toBe(literal);
  expect(inexactNumber('{"x":1e400}')?.readAs).toBe('null');
});

it('names the number, what it would become and what to send instead', () => {
  const found = inexactNumber('{"id":12345678901234567890123}');
  if (!found) throw new Error('not found');
  expect(inexactNumberMessage('The input', found)).toBe(
    'The input holds the number 12345678901234567890123, which JSON numbers cannot keep exactly (they are doubles: beyond 9007199254740991 they keep about 16 digits, and past 1.8e308 become null); it would be stored as 1.2345678901234568e+22. Send it as a string.',
  );
});
