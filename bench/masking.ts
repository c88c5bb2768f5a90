/**
 * Masking with many minted tokens (bench/README.md, "thirty-sixth session"): a GitHub App on hundreds
 * of repositories holds hundreds of installation tokens at once, each masked in every form while it can
 * be valid (src/rmapp/minted-secrets.ts). For 0, 100, 1,000 and 3,000 minted tokens (beside three
 * configured secrets), the cost of masking one log line (`masker.text`), one API answer of 5,000
 * strings (`masker.value`) and one 1 MiB text, by the masker before this session (kept as the
 * differential test's reference, test/helpers/masking-reference.ts) and now (src/rmapp/masking.ts);
 * then the time to mint 1,000 tokens one by one, a line masked after each (each mint changes the
 * secret set, so each is a rebuild), and the first line of a masker made while 1,000 are minted.
 *
 * `node --import tsx bench/masking.ts [counts…]` (0 100 1000 3000 by default).
 */
import { randomBytes } from 'node:crypto';
import { createMasker, type Masker } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { createMasker as createReferenceMasker } from '../test/helpers/masking-reference.ts';

const COUNTS = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [0, 100, 1000, 3000];
const CONFIGURED = ['ghp_Zq8m2Jd0bX4tLw9nR6cV1kP3sY7uE5aH0oFi', 'whsec-9f2c1e7a44b0d3e8', 'db-Pa55w0rd!x'];
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const token = (): string => `ghs_${[...randomBytes(36)].map((b) => ALNUM[b % 62]).join('')}`;

/** Log lines as the service writes them (pino JSON), no secret in them: the common case. */
const lines = Array.from(
  { length: 2_000 },
  (_, i) =>
    `{"level":30,"time":${1_765_000_000_000 + i},"pid":4242,"hostname":"worker-1","runId":"run_${i.toString(36)}abc","step":"push","msg":"pushed rmapp/issue-${i} to acme/widgets-${i % 37} (3 commits, 12 files)"}`,
);
/** An API answer: 500 runs of 10 string fields, 5,000 strings. */
const answer = Array.from({ length: 500 }, (_, i) => ({
  id: `run_${i}`,
  workflow: 'issue-implementation',
  status: i % 3 ? 'succeeded' : 'waiting',
  repository: `acme/widgets-${i % 37}`,
  branch: `rmapp/issue-${i}`,
  title: `Fix the flaky test in module ${i}`,
  createdAt: new Date(1_765_000_000_000 + i * 1000).toISOString(),
  step: 'open-pull-request',
  summary: `Opened pull request #${i} after 3 attempts; tests pass on node 22 and 24.`,
  error: '',
}));
const big = lines
  .join('\n')
  .repeat(Math.ceil(2 ** 20 / (lines.join('\n').length + 1)))
  .slice(0, 2 ** 20);

/** Milliseconds per call of `run`, the median of 5 rounds of `reps` calls after a warm-up round. */
function perCall(reps: number, run: (i: number) => void): number {
  const rounds: number[] = [];
  for (let r = 0; r < 6; r += 1) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < reps; i += 1) run(i);
    if (r > 0) rounds.push(Number(process.hrtime.bigint() - t) / 1e6 / reps);
  }
  return rounds.sort((a, b) => a - b)[2] as number;
}

type Make = (secrets: string[], minted: MintedSecrets) => Masker;
const makers: [string, Make][] = [
  ['before', (secrets, minted) => createReferenceMasker(secrets, { minted })],
  ['now', (secrets, minted) => createMasker(secrets, { minted })],
];

console.log('masking with N minted tokens (+3 configured secrets); ms per call, median of 5 rounds');
console.log('tokens  masker      line ms   answer ms   1 MiB ms');
for (const n of COUNTS) {
  const minted = new MintedSecrets();
  for (let i = 0; i < n; i += 1) minted.add(token());
  for (const [name, make] of makers) {
    const masker = make(CONFIGURED, minted);
    masker.text('warm');
    const line = perCall(n >= 1000 && name === 'before' ? 200 : 2_000, (i) => masker.text(lines[i % lines.length] as string));
    const value = perCall(n >= 1000 && name === 'before' ? 1 : 5, () => masker.value(answer));
    const mib = perCall(1, () => masker.text(big));
    console.log(
      `${String(n).padStart(6)}  ${name.padEnd(8)} ${line.toFixed(4).padStart(10)} ${value.toFixed(2).padStart(11)} ${mib.toFixed(1).padStart(10)}`,
    );
  }
}

console.log('\nminting 1,000 tokens one by one, a line masked after each (a rebuild each time)');
for (const [name, make] of makers) {
  const minted = new MintedSecrets();
  const masker = make(CONFIGURED, minted);
  const t = process.hrtime.bigint();
  for (let i = 0; i < 1_000; i += 1) {
    minted.add(token());
    masker.text(lines[i % lines.length] as string);
  }
  console.log(`${name.padEnd(8)} ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0).padStart(6)} ms`);
}

console.log('\na masker made while 1,000 tokens are minted: its first line (every token indexed), median of 5');
{
  const minted = new MintedSecrets();
  for (let i = 0; i < 1_000; i += 1) minted.add(token());
  for (const [name, make] of makers) {
    const first = perCall(1, () => make(CONFIGURED, minted).text(lines[0] as string));
    console.log(`${name.padEnd(8)} ${first.toFixed(0).padStart(6)} ms`);
  }
}
