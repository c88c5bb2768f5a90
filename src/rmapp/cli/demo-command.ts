/** `rmapp demo`: the GitHub bot against a local GitHub, with a sample repository and agent (src/rmapp/demo/). */
import { InvalidArgumentError, type Command } from 'commander';
import { isFinalStatus, type RunStatus } from '../../persistence/run-status.ts';
import type { Demo, DemoResult, DemoRunLeft } from '../demo/demo.ts';
import { onForegroundStop } from './foreground-stop.ts';
import { runsCommand } from './shell-word.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number between 0 and 65535 (0: any free port)');
  return n;
}

/** The agent's argv: a JSON array of strings, or words separated by spaces (as RMAPP_AGENT_COMMAND takes it). */
function agentArgv(value: string): string {
  const text = value.trim();
  if (!text) throw new InvalidArgumentError('is empty: give the agent command, e.g. \'["claude","-p"]\' with RMAPP_AGENT_KIND=claude-code');
  if (!text.startsWith('[')) return text;
  let argv: unknown;
  try {
    argv = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('is not a valid JSON array: give e.g. \'["claude","-p"]\', or plain words separated by spaces');
  }
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string' && a.length > 0)) {
    throw new InvalidArgumentError('must be a JSON array of non-empty strings, e.g. \'["claude","-p"]\'');
  }
  return text;
}

export function addDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'watch the GitHub bot implement an issue and answer a review, against a local GitHub (state in .rmapp/demo/, no settings needed)',
    )
    .option('--port <port>', 'dashboard port (0: any free port)', port, 3000)
    .option('--once', 'exit when both runs have ended (exit code 1 unless both succeeded)')
    .option('--json', 'print one JSON document at the end: { runs: [{ id, workflow, status }], pullRequest: { number, url } }')
    .option(
      '--agent <argv>',
      'a real coding agent instead of the sample one, e.g. \'["claude","-p"]\' with RMAPP_AGENT_KIND=claude-code',
      agentArgv,
    )
    .action(async (o: { port: number; once?: boolean; json?: boolean; agent?: string }) => {
      // Loaded here: the demo brings the emulator and GitHub's 13 MB OpenAPI description.
      const { startDemo, DEMO_STOP_GRACE_MS } = await import('../demo/demo.ts');
      const say = (line: string) => process.stderr.write(`rmapp demo: ${line}\n`);
      // Until both runs have ended, Ctrl-C stops the demo as `start --wait` stops (foreground-stop.ts) and
      // says what became of its runs: it ended the process without a word.
      const stop = onForegroundStop('demo', {
        graceMs: DEMO_STOP_GRACE_MS,
        afterwards: 'then the demo stops with its runs where they are',
      });
      let result: DemoResult | null;
      let demo: Demo;
      try {
        demo = await startDemo({ dir: process.cwd(), port: o.port, agent: o.agent, say });
        result = await Promise.race([demo.finished, aborted(stop.signal)]);
        if (result === null) return reportDemoStopped(stop.signalled() ?? 'SIGINT', await demo.stop({ readRuns: true }));
      } finally {
        stop.dispose();
      }
      if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      const ok = result.runs.length === 2 && result.runs.every((r) => r.status === 'succeeded');
      if (!o.once) {
        say(`both runs have ended; the dashboard and the local GitHub stay up until Ctrl-C`);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        });
      }
      await demo.stop();
      if (!ok) process.exitCode = 1;
    });
}

/** Resolves with null once `signal` is aborted. */
function aborted(signal: AbortSignal): Promise<null> {
  return new Promise((resolve) => (signal.aborted ? resolve(null) : signal.addEventListener('abort', () => resolve(null), { once: true })));
}

/**
 * After a stop before both runs ended: each run the demo left unfinished, and what can be done with it.
 * Nothing resumes it — it works against the local GitHub, which ended with the demo, and its settings
 * were the demo's own — so the way on is a new demo (which empties `.rmapp/demo/`), and until then
 * `runs show` on the demo's store shows how far it got. Exit code 130 or 143, as for `start --wait`.
 */
function reportDemoStopped(sig: NodeJS.Signals, runs: DemoRunLeft[]): void {
  const say = (line: string) => process.stderr.write(`rmapp demo: ${line}\n`);
  const unfinished = runs.filter((r) => !isFinalStatus(r.status as RunStatus));
  for (const r of unfinished) {
    const at = typeof r.state === 'string' ? `, at ${r.state}` : r.state == null ? '' : `, at ${JSON.stringify(r.state)}`;
    say(`stopped by ${sig}; run ${r.id} (${r.workflow}) did not finish (it was ${r.status}${at}).`);
  }
  const show = unfinished[unfinished.length - 1] ?? runs[runs.length - 1];
  say(
    (unfinished.length
      ? `nothing resumes ${unfinished.length === 1 ? 'it' : 'them'}: the demo's runs work against its local GitHub, which stopped with it. `
      : `stopped by ${sig} before its runs ended. `) +
      `\`rmapp demo\` starts over (it empties .rmapp/demo/)` +
      (show ? `; until then \`RMAPP_DATA_DIR=.rmapp/demo/pgdata ${runsCommand('show', show.id)}\` shows how far it got.` : '.'),
  );
  process.exitCode = sig === 'SIGINT' ? 130 : 143;
}
