/**
 * What PRReview reads of the file a review comment points at: only the start of a regular file. A
 * FIFO (an agent in an earlier step can make one in the workspace) would block the step for ever, a
 * device never end, and a huge committed file would be read whole into the service's memory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readSnippetSource } from '../src/actors/pr-review.ts';

const dir = mkdtempSync(join(tmpdir(), 'rmapp-snippet-'));

it('reads a regular file, and nothing of a FIFO, a device or a symlink', async () => {
  writeFileSync(join(dir, 'a.ts'), 'line 1\nline 2\n');
  expect(await readSnippetSource(join(dir, 'a.ts'))).toBe('line 1\nline 2\n');
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  expect(await readSnippetSource(join(dir, 'pipe')), 'a FIFO was read').toBe('');
  symlinkSync('/dev/zero', join(dir, 'zero'));
  expect(await readSnippetSource(join(dir, 'zero')), 'a symlink to a device was followed').toBe('');
  expect(await readSnippetSource('/dev/zero'), 'a device was read').toBe('');
});

it('reads at most the first 4 MiB of a large file', async () => {
  writeFileSync(join(dir, 'big.txt'), Buffer.alloc(9 * 1024 * 1024, 'x'));
  expect((await readSnippetSource(join(dir, 'big.txt'))).length).toBe(4 * 1024 * 1024);
});
