#!/usr/bin/env node
// The rmapp command: the compiled CLI in dist/ (`npm run build`; `npm install` in a clone runs it).
import { existsSync } from 'node:fs';

const main = new URL('../dist/rmapp/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`rmapp: ${main.pathname} is missing: run \`npm run build\` in ${new URL('..', import.meta.url).pathname}.\n`);
  process.exit(1);
}
await import(main.href);
