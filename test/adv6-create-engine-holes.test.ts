/**
 * createEngine checks every entry of workflows and previousVersions: a sparse array from plain
 * JavaScript (`[, order]`, `new Array(2)`) has holes that `forEach` skips, and the registration that
 * followed read them as undefined — a TypeError from run-queries.ts instead of a ValidationError.
 */
import { expect, it } from 'vitest';
import { createEngine, ValidationError } from '../src/index.ts';

it.each([
  ['workflows', { workflows: Object.assign([], { length: 1 }) }, /workflows\[0\] is not a defineWorkflow/],
  ['workflows', { workflows: new Array(3) }, /workflows\[0\] is not a defineWorkflow/],
  ['previousVersions', { workflows: [], previousVersions: new Array(2) }, /previousVersions\[0\] is not a defineWorkflow/],
])('a hole in %s is named as an entry that is not a definition', (_list, options, message) => {
  expect(() => createEngine(options as never)).toThrow(ValidationError);
  expect(() => createEngine(options as never)).toThrow(message);
});
