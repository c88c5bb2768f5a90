import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Files that run for minutes: started first, so that on a clean clone (no vitest cache, where vitest
 * would order files by size) none of them starts last and runs alone on one core while the other
 * idles. With a cache, vitest's own order (longest first) already does this. The crash matrix is split
 * per workflow (test/helpers/crash-matrix.ts) so that its two halves run side by side.
 */
const LONG_POLES = ['test/crash-matrix-issue.test.ts', 'test/crash-matrix-pr-review.test.ts'];

class LongPolesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONG_POLES.findIndex((p) => f.moduleId.endsWith(p));
      return i === -1 ? LONG_POLES.length : i;
    };
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // PGlite takes ~3 s to boot and crash tests spawn real processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: two test files at a time.
    maxWorkers: 2,
    reporters: ['default'],
    sequence: { sequencer: LongPolesFirst },
  },
});
