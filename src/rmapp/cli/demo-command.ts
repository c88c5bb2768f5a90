/** `rmapp demo`: the GitHub bot against a local GitHub, with a sample repository and agent (src/rmapp/demo/). */
import { InvalidArgumentError, type Command } from 'commander';

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
      const { startDemo } = await import('../demo/demo.ts');
      const say = (line: string) => process.stderr.write(`rmapp demo: ${line}\n`);
      const demo = await startDemo({ dir: process.cwd(), port: o.port, agent: o.agent, say });
      const result = await demo.finished;
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
