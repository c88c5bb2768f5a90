// @ts-check
// ESLint for rmapp (issue #18): `npm run lint:eslint`, one part of `npm run lint`.
//
// Why these packages:
// - ESLint 9 with a flat config, and typescript-eslint 8, the maintained TypeScript front end for it.
//   ESLint 10 exists but needs Node 20.19; ESLint 9 runs on every Node 20 the package supports.
// - Layout is Prettier's job (`prettier.config.js`, `npm run format`), not ESLint's: none of the sets below has
//   layout rules, so `eslint --fix` and `prettier --write` never undo each other.
// - Import boundaries and import cycles are checked by dependency-cruiser (`.dependency-cruiser.mjs`,
//   `npm run lint:deps`), which builds the import graph once; the reason is written there.
//
// Rule sets: `eslint:recommended` and typescript-eslint's `recommended`, without type information.
// The type-aware set (`recommendedTypeChecked`: no-floating-promises, no-misused-promises, no-unsafe-*)
// was measured on the 2-core machine and is too slow to run on every `npm test`: `eslint .` took 88 s
// of CPU (4 min of wall time, the cores shared with other work) against 19 s for this set, because
// ESLint then builds the whole TypeScript program, as `tsc` does, before walking every file. Of the
// type-aware rules, `no-floating-promises` found nothing then and `no-misused-promises` one place.
// Measured the same way: `npm run lint:deps` 5 s of CPU, `npm run lint:eslint` 19 s, Prettier's
// `format:check` 24 s (on an idle machine a second of CPU is about a second of wall time).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Options of `no-unused-vars`, for TypeScript and JavaScript alike. */
const UNUSED = { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true };

export default defineConfig(
  {
    // The build, generated SQL and drizzle-kit's snapshots, and the snapshot fixtures the tests write.
    ignores: ['dist/**', 'bench/dist/**', 'migrations/**', '.rmapp/**', 'scratch/**', 'test/fixtures/snapshots/**'],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // `_name` marks a binding kept on purpose (an omitted field in a destructuring, an unused parameter).
      '@typescript-eslint/no-unused-vars': ['error', UNUSED],
      // A binding assigned once, later, but read before by closures made earlier (a server's address
      // known once it listens) cannot be a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests and benchmarks stand in for parts with casts (fakes, hostile payloads, private fields):
    // `any` there is the point, not a hole in a public type.
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { 'no-unused-vars': ['error', UNUSED] },
  },
  {
    // The engine and its store log nothing themselves: they report through events and errors, and the
    // service decides what to print (README, "Layout"; the engine is also a library).
    files: ['src/state_machine/**', 'src/persistence/**'],
    rules: { 'no-console': 'error' },
  },
  {
    // Plain JavaScript run by Node: the CLI launcher, the sandbox's forwarder, the scripted test agent.
    files: ['**/*.mjs', '*.js'],
    languageOptions: { globals: globals.node },
  },
  {
    // The dashboard: browser ES modules served as they are (no build step).
    files: ['src/rmapp/server/dashboard/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
