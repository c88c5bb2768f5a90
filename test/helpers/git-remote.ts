/** A real git "origin" for tests (src/rmapp/demo/git-remote.ts, which `rmapp demo` also uses). */
export * from '../../src/rmapp/demo/git-remote.ts';
