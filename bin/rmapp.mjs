#!/usr/bin/env node
// The rmapp command: the compiled CLI in dist/ (`npm run build`; `npm install` in a clone runs it).
import { existsSync } from 'node:fs';

// A SIGTERM/SIGINT that comes while the CLI loads is kept for `rmapp worker` and `rmapp serve`, which stop
// cleanly on it; any other command raises it again (src/rmapp/cli/early-signals.ts).
// Once released to a command that does not take it over, the listener stays until a signal comes (one
// may be on its way already) and then acts as if there were none.
const early = {
  signals: [],
  released: false,
  listener: (sig) => {
    if (!early.released) return void early.signals.push(sig);
    process.off('SIGTERM', early.listener);
    process.off('SIGINT', early.listener);
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  },
};
process.on('SIGTERM', early.listener);
process.on('SIGINT', early.listener);
globalThis[Symbol.for('rmapp.earlySignals')] = early;

const main = new URL('../dist/rmapp/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`rmapp: ${main.pathname} is missing: run \`npm run build\` in ${new URL('..', import.meta.url).pathname}.\n`);
  process.exit(1);
}
await import(main.href);
