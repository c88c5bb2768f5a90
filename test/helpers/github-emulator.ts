/** The GitHub emulator, a product module since `rmapp demo` serves it (src/rmapp/demo/github-emulator.ts). */
export * from '../../src/rmapp/demo/github-emulator.ts';
