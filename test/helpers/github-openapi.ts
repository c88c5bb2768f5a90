/** The OpenAPI checker of the GitHub emulator (src/rmapp/demo/github-openapi.ts). */
export * from '../../src/rmapp/demo/github-openapi.ts';
