/**
 * Adversarial: a transcript entry longer than its bound keeps its head and tail around a "characters
 * left out" mark. A secret that straddles the cut used to leave its first (or last) up to 11 characters
 * in the stored transcript: the masker treats both sides of the mark as edges.
 */
import { expect, it } from 'vitest';
import { DEFAULT_TRANSCRIPT_LIMITS, TranscriptBuilder } from '../src/rmapp/agents/transcript.ts';
import { createMasker } from '../src/rmapp/masking.ts';

const secret = 'S3cr3tValue-qqqqqqqqZk9w2LmN4pXy';
const masker = createMasker([secret]);
const half = Math.floor((DEFAULT_TRANSCRIPT_LIMITS.entryChars - 60) / 2);
const total = 40_000;

it.each([
  ['its head before the cut', half - 10],
  ['its tail after the cut', total - half - secret.length + 10],
])('no piece of a secret survives when %s is all that is kept', (_what, at) => {
  const t = new TranscriptBuilder('command', 'agent');
  t.text('assistant', 'a'.repeat(at) + secret + 'b'.repeat(total - at - secret.length));
  const stored = JSON.stringify(t.snapshot(masker));
  expect(stored).toContain('characters left out');
  for (const piece of [secret.slice(0, 8), secret.slice(-8)]) expect(stored, `"${piece}" of the secret was stored`).not.toContain(piece);
  expect(stored).toContain('[REDACTED]');
});

it('text that only looks like the mark is masked as before, and the mark itself is kept', () => {
  expect(masker.text(`x\n… 12 characters left out …\n${secret.slice(-10)} y`)).toBe('x\n… 12 characters left out …\n[REDACTED] y');
  expect(masker.text(`plain ${secret} text`)).toBe('plain [REDACTED] text');
});
