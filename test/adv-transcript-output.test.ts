/**
 * Adversarial: an agent (or the command kind's tests) printing many short lines. Each appended line used
 * to re-cut the whole output entry (16 KiB scanned per line): 100,000 lines cost seconds of the service's
 * CPU. The work is measured as characters scanned by String.prototype.replace (no clock): it must be
 * linear in what was printed. The stored entry stays within its bound with its head and its end.
 */
import { afterEach, expect, it } from 'vitest';
import { TranscriptBuilder } from '../src/rmapp/agents/transcript.ts';

const original = String.prototype.replace;
afterEach(() => {
  String.prototype.replace = original;
});

it('appending many lines to one output entry scans each character a bounded number of times', () => {
  const t = new TranscriptBuilder('command', 'agent');
  let scanned = 0;
  String.prototype.replace = function (this: string, ...args: Parameters<typeof original>) {
    scanned += this.length;
    return original.apply(this, args);
  } as typeof original;
  let printed = 0;
  t.output('stdout', 'FIRST LINE\n');
  for (let i = 0; i < 20_000; i += 1) {
    const line = `line ${i} of the output\n`;
    printed += line.length;
    t.output('stdout', line);
  }
  t.output('stdout', 'LAST LINE\n');
  String.prototype.replace = original;
  expect(scanned, `${scanned} characters scanned for ${printed} printed`).toBeLessThan(20 * printed);
  const stored = t.snapshot().entries;
  expect(stored).toHaveLength(1);
  const text = (stored[0] as { text: string }).text;
  expect(text.length).toBeLessThanOrEqual(t.limits.entryChars);
  expect(text.startsWith('FIRST LINE\n')).toBe(true);
  expect(text.endsWith('LAST LINE\n')).toBe(true);
  expect(text).toContain('characters left out');
});
