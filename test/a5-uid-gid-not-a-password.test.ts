/**
 * `-u user:password` (curl's form) is masked wherever it stands, whoever configured what. But `-u` and
 * `--user` also take a numeric `uid:gid` — `docker run -u 1000:1000`, `podman exec --user 0:0`, what
 * `--user $(id -u):$(id -g)` prints once expanded — which is no credential: the masker wrote
 * `docker run -u 1000:[REDACTED]` into test output, plans and comments.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';

const masker = createMasker([], { minted: null });

describe('a numeric uid:gid after -u / --user', () => {
  it.each(['docker run -u 1000:1000 node:20 npm test', 'podman exec --user 0:0 c sh', '+ docker run --rm -u 501:20 -v "$PWD:/w" img'])(
    '%s: left as it is',
    (text) => {
      expect(masker.text(text)).toBe(text);
    },
  );

  it.each([
    ['curl -u alice:s3cr3t https://x', `curl -u alice:${MASK} https://x`],
    ['curl -u 1000:s3cr3t https://x', `curl -u 1000:${MASK} https://x`],
    ['curl --user bob:12345678 https://x', `curl --user bob:${MASK} https://x`],
    ['curl -u 1000:1000x https://x', `curl -u 1000:${MASK} https://x`],
  ])('%s: a password still masked', (text, shown) => {
    expect(masker.text(text)).toBe(shown);
  });
});
