/**
 * The CLI's refusals are printed terminal-safe, as `runs show` prints a run's messages (README, "CLI":
 * control characters shown as codes, never sent to the terminal). A refusal quotes what it refuses:
 * `runs retry --drop-signal` of a run that failed on no signal quotes the run's error, which a step's
 * output wrote (an agent's stderr, a test's output) — its escape sequences (OSC to set the title or
 * the clipboard, a screen clear) went raw to the operator's terminal, while `runs show` of the same run
 * showed them as `\x1b`. A usage error quotes the value typed, where a CR from a script saved with CRLF
 * endings hid the difference (`Unknown workflow "example.order"` for `example.order\r`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step } from '../src/index.ts';
import { runRmapp } from './helpers/processes.ts';

const ESCAPES = '\u001b]0;PWNED\u0007\u001b[2J\u001b[31m';

/** A step failing with the message its input gives: what an agent's error carrying its stderr is. */
function echoFailure() {
  const fail = step(
    async ({ input }: { input: { message: string } }) => {
      throw Object.assign(new Error(input.message), { category: 'permanent' });
    },
    { retry: { maxAttempts: 1 } },
  );
  const machine = setup({ types: {} as { context: { message: string }; input: { message: string } }, actors: { fail } }).createMachine({
    id: 'echo',
    initial: 'working',
    context: ({ input }) => ({ message: input.message }),
    states: { working: { invoke: { src: 'fail', input: ({ context }) => ({ message: context.message }) } } },
  });
  return defineWorkflow({ name: 'hi.echo-failure', machine, input: z.object({ message: z.string() }) });
}

const dir = mkdtempSync(join(tmpdir(), 'hi-terminal-'));
const dataDir = join(dir, 'pgdata');
/** The CLI on the embedded store the test wrote, whatever database the environment names. */
const env = { RMAPP_DATA_DIR: dataDir, DATABASE_URL: undefined, RMAPP_WORKFLOWS: undefined };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The control characters (other than newline) in `text`, named by code: none is expected. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/g;
const controls = (text: string) => [...text.matchAll(CONTROL)].map((m) => `U+${m[0].charCodeAt(0).toString(16).padStart(4, '0')}`);

describe('the CLI prints its refusals terminal-safe', () => {
  it('runs retry --drop-signal quotes the run error without its escape sequences', async () => {
    const workflow = echoFailure();
    const engine = createEngine({ workflows: [workflow], database: { dataDir } });
    let id: string;
    try {
      await engine.startWorker();
      id = await engine.start(workflow, { message: `agent said ${ESCAPES}all good` });
      const run = await engine.waitFor(id, { timeoutMs: 60_000 });
      expect(run.status, `run ${id}`).toBe('failed');
    } finally {
      await engine.stop();
    }
    const { code, stdout, stderr } = await runRmapp(['runs', 'retry', id, '--drop-signal'], env);
    expect(code, `runs retry --drop-signal: ${stderr}`).toBe(1);
    expect(stderr, 'the refusal quotes the run error').toContain('did not fail handling a signal');
    expect(controls(stderr + stdout), `control characters sent to the terminal: ${JSON.stringify(stderr)}`).toEqual([]);
    expect(stderr, 'the escape sequences shown as codes, as `runs show` shows them').toContain('agent said \\x1b]0;PWNED\\x07\\x1b[2J');
  });

  it('an unknown workflow name typed with a CR is shown with the CR as a code', async () => {
    const { code, stderr } = await runRmapp(['start', 'example.order\r', '{}'], env);
    expect(code, stderr).toBe(1);
    expect(controls(stderr), `control characters sent to the terminal: ${JSON.stringify(stderr)}`).toEqual([]);
    // The engine quotes the name as JSON (errors.ts `shownValue`): the CR is a visible `\r`.
    expect(stderr).toContain('Unknown workflow "example.order\\r" (did you mean "example.order"?)');
  });

  it('a usage error quoting an option value shows its escape sequence as a code', async () => {
    const { code, stderr } = await runRmapp(['runs', 'list', '--status', '\u001b[2Jx'], env);
    expect(code, stderr).toBe(1);
    expect(controls(stderr), `control characters sent to the terminal: ${JSON.stringify(stderr)}`).toEqual([]);
    expect(stderr).toContain("'\\x1b[2Jx' is invalid");
  });
});
