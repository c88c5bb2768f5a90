/**
 * `runCommand`'s output: bytes decoded as whole UTF-8 characters however the pipe splits them, and the
 * output bound counted in bytes (the sandbox's 1 MiB is a byte budget), cut at a character boundary.
 */
import { expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';

/** A node child that writes each buffer separately, waiting between writes so the reader sees separate chunks. */
function writesInChunks(chunks: number[][], stream: 'stdout' | 'stderr' = 'stdout'): string[] {
  const script = `
    const chunks = ${JSON.stringify(chunks)};
    const next = (i) => { if (i < chunks.length) process.${stream}.write(Buffer.from(chunks[i]), () => setTimeout(() => next(i + 1), 30)); };
    next(0);`;
  return [process.execPath, '-e', script];
}

it('decodes a 3-byte character split across two chunks as the character, on stdout and stderr', async () => {
  const euro = [...Buffer.from('€', 'utf8')]; // e2 82 ac
  expect(euro).toHaveLength(3);
  for (const stream of ['stdout', 'stderr'] as const) {
    const result = await runCommand(
      writesInChunks(
        [
          [0x61, euro[0] as number],
          [euro[1] as number, euro[2] as number, 0x62],
        ],
        stream,
      ),
    );
    expect(result.exitCode).toBe(0);
    expect(result[stream], `${stream} decoded each chunk on its own`).toBe('a€b');
  }
});

it('keeps at most maxOutputBytes bytes of the end, starting at a whole character', async () => {
  // Seven 2-byte characters (14 bytes) with a 9-byte bound: the last 9 bytes start inside a character,
  // which is left out whole, so 4 characters (8 bytes) remain.
  const text = 'é'.repeat(7);
  const result = await runCommand([process.execPath, '-e', `process.stdout.write(${JSON.stringify(text)})`], { maxOutputBytes: 9 });
  expect(result.stdout, 'the bound counted characters, not bytes, or cut a character').toBe('éééé');
  expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(9);

  // Many chunks over the bound: the end is kept, each character whole.
  const long = Array.from({ length: 20 }, (_, i) => [...Buffer.from(`${i % 10}€`, 'utf8')]);
  const kept = await runCommand(writesInChunks(long), { maxOutputBytes: 10 });
  const whole = long.map((c) => Buffer.from(c).toString('utf8')).join('');
  expect(whole.endsWith('8€9€')).toBe(true);
  // The last 10 bytes are 2 bytes of the '€' after '7' and then '8€9€' (8 bytes).
  expect(kept.stdout).toBe('8€9€');
});
