/**
 * A service token spaced out over more than the commit check's carried overlap (helper 6): the check
 * reads a file's added lines in windows of 1 MiB and carries the end of each — 16 K letters and digits,
 * but never more than 4 MiB of raw text (secret-scan.ts `OVERLAP_MAX_CHARS`). A token whose characters
 * stand 150,000 blanks apart (one 5.9 MB line) straddles windows by more than that, and is not refused,
 * though the finder finds it in the whole text ("its letters and digits with anything else between",
 * README). Fixed by shortening long runs of other characters in the carried text (secret-scan.ts
 * `squeeze`), keeping the lines they held.
 */
import { describe, expect, it } from 'vitest';
import { AddedSecretScanner, secretFinder } from '../src/rmapp/secret-scan.ts';

const TOKEN = `ghp_${'Zx9Lm2Qr7Tv4Wb8Ny3Kc6Hd1Fg5Js0Pa2Eu7'}`;

/** The scanner after a diff adding `added` as a new file, fed in chunks of 64 KiB as git writes it. */
function scanned(added: string): AddedSecretScanner {
  const scanner = new AddedSecretScanner(secretFinder([{ label: "the service's own GitHub token", secrets: [TOKEN] }]));
  const lines = added.split('\n');
  const diff = Buffer.from(
    `diff --git a/x b/x\nnew file mode 100644\n--- /dev/null\n+++ b/x\n@@ -0,0 +1,${lines.length} @@\n${lines.map((l) => `+${l}\n`).join('')}`,
  );
  for (let i = 0; i < diff.length; i += 65536) scanner.write(diff.subarray(i, i + 65536));
  scanner.end();
  return scanner;
}

/** What the scanner finds (the file's `diff --git` line) in a diff adding `added`. */
const scan = (added: string): string | null => scanned(added).found;

describe('a token spaced out over several windows of the commit check', () => {
  it('is refused when its characters stand 50,000 blanks apart (within the overlap)', () => {
    expect(scan([...TOKEN].join(' '.repeat(50_000))), 'a token spaced over 2 MB was not found').toBe('diff --git a/x b/x');
  });

  it('is refused when its characters stand 150,000 blanks apart (past the 4 MiB overlap)', () => {
    expect(scan([...TOKEN].join(' '.repeat(150_000))), 'a token spaced over 5.9 MB was not found').toBe('diff --git a/x b/x');
  });

  it('is refused with its lines when its characters stand 150,000 blank lines apart', () => {
    const scanner = scanned([...TOKEN].join('\n'.repeat(150_000)));
    expect(scanner.found, 'a token spread over 6 million lines was not found').toBe('diff --git a/x b/x');
    expect(scanner.lines).toEqual({ first: 1, last: 1 + (TOKEN.length - 1) * 150_000 });
  });

  it('names the right line after long runs were shortened in earlier windows', () => {
    const filler = `${'='.repeat(300)}\n`.repeat(10_000);
    const scanner = scanned(`${filler}token: ${TOKEN}\nafter`);
    expect(scanner.found).toBe('diff --git a/x b/x');
    expect(scanner.lines).toEqual({ first: 10_001, last: 10_001 });
  });
});
