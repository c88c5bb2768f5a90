/** JSON.parse's refusals named by line and column (src/rmapp/json-error-location.ts). */
import { expect, it } from 'vitest';
import { jsonErrorAt, jsonErrorOffset } from '../src/rmapp/json-error-location.ts';

const refusal = (text: string) => {
  try {
    JSON.parse(text);
  } catch (err) {
    return jsonErrorAt(text, err);
  }
  throw new Error(`${text} parsed`);
};

it('names the line and column where the text stops being JSON, on one line', () => {
  expect(refusal('{\n  "a": 1,\n  "b": \n}\n')).toBe("4:1: Unexpected token '}'");
  expect(refusal('{"a":1,}')).toMatch(/^1:8: /);
  expect(refusal('[1,2')).toBe('1:5: the text ends too soon');
  expect(refusal('')).toBe('1:1: the text ends too soon');
  expect(refusal('1 2')).toBe('1:3: Unexpected non-whitespace character');
  expect(refusal('"\\q"')).toMatch(/^1:3: /);
});

it('finds no error in JSON', () => {
  for (const text of ['{"a":[1,-2.5e+3,{"b":null}],"c":"\\u00e9\\n"}', ' true ', '""', '[]']) expect(jsonErrorOffset(text), text).toBe(-1);
});
