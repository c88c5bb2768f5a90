/**
 * A workflow of one agent step, for the session tests: the step runs the coding agent (a fake CLI of
 * test/fixtures/fake-agents/) in `input.cwd` with `input.prompt`, through `runAgent` with the step's
 * context, so its transcript is an artifact of the run — as the GitHub workflows' agent steps do.
 */
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../../src/index.ts';
import { runAgent, type AgentConfig } from '../../src/rmapp/agent-runner.ts';
import { ROOT } from './processes.ts';

/** The argv of a fake agent (`claude`, `codex`, `aider`). */
export const fakeAgent = (name: 'claude' | 'codex' | 'aider') => ['node', join(ROOT, 'test/fixtures/fake-agents', `${name}.mjs`)];

export function agentWorkflow(agent: AgentConfig, name = 'test.agent') {
  const work = step(
    async (ctx: { input: { cwd: string; prompt: string }; signal: AbortSignal } & Parameters<typeof runAgent>[1]['session'] & object) => {
      const result = await runAgent(agent, { cwd: ctx.input.cwd, prompt: ctx.input.prompt, signal: ctx.signal, session: ctx });
      return { answer: result.text.slice(0, 200), turns: result.usage.turns };
    },
    { kind: 'agent', retry: { maxAttempts: 1 } },
  );
  const machine = setup({
    types: { input: {} as { cwd: string; prompt: string }, context: {} as { cwd: string; prompt: string } },
    actors: { work },
  }).createMachine({
    id: 'agentSession',
    context: ({ input }) => input,
    initial: 'working',
    states: {
      working: { invoke: { src: 'work', input: ({ context }) => context, onDone: 'done' } },
      done: { type: 'final' },
    },
  });
  return defineWorkflow({ name, machine, input: z.object({ cwd: z.string(), prompt: z.string() }) });
}
