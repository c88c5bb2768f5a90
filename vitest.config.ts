import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Files that run for minutes, longest first: started first, so that on a clean clone (no vitest cache,
 * where vitest would order files by size) none of them starts last and runs alone on one core while the
 * other idles. With a cache, vitest's own order (longest first) already does this. The crash matrix is
 * split per workflow (test/helpers/crash-matrix.ts) so that its two halves run side by side.
 *
 * The model-based tests were the longest file (396 s of the 1,092 s clean-clone run on the shared
 * 2-core machine, where it is small on disk and so started only at 563 s); they are now three files
 * (test/helpers/model-based.ts), each one PGlite process on one core. The crash matrix halves took
 * 143 s and 108 s, mostly waiting; they go between the model-based files.
 */
const LONG_POLES = [
  'test/model-based-bugfix-docs.test.ts',
  'test/model-based-complex-review.test.ts',
  'test/crash-matrix-issue.test.ts',
  'test/model-based.test.ts',
  'test/crash-matrix-pr-review.test.ts',
];

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
    // Test files share their worker processes: each file in a fresh process re-evaluated rmapp's sources
    // (~150 modules through vitest's module runner) and its dependencies, ~0.7 s per file, 143 files —
    // 971 s for the suite on this machine, 868 s sharing (vitest's own "import" figure 97.5 s → 24.4 s).
    // A file that changes process-wide state must undo it: environment variables, fake timers, the
    // OpenTelemetry globals (test/helpers/otel-globals.ts).
    isolate: false,
    // Bundles the fixtures that tests start as processes, once per run.
    globalSetup: ['test/global-setup.ts'],
    // Two test files at a time on the two cores. Three gave a 699 s clean-clone run (1,092 s with two
    // before the fixtures were bundled and the model-based file split) but three failures under the
    // load: a 1 s lease's run not finished in 60 s (crash-github), a take-over under a 2 s lease, a
    // 60 ms durable sleep that ended before the run could leave memory. Since then the suite is bound
    // by CPU: three took 1,049 s against 971 s with two (2026-12-03, the tests' own time 2,885 s
    // against 1,783 s).
    maxWorkers: 2,
    reporters: ['default'],
    sequence: { sequencer: LongPolesFirst },
  },
});
