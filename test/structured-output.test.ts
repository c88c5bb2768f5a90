/**
 * Structured answers from the coding agent: JSON found in what agents really print (plain, fenced,
 * Claude Code's result envelope), validated with zod, one corrective re-ask, then a failure of
 * category `agent` naming what was wrong. The agent is a real process (prompt on stdin, no shell).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import type { AgentConfig } from '../src/rmapp/agent-runner.ts';
import { issueAnalysisSchema } from '../src/rmapp/analysis.ts';
import { parsePlanYaml, planSchema, renderPlanYaml, yamlBlock } from '../src/rmapp/plan.ts';
import { askJson, CORRECTIVE_MARKER, extractJson, type OutputIssue } from '../src/rmapp/structured-output.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { testSandbox } from './helpers/sandbox.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rmapp-json-'));
const good = { summary: 'Add a --json flag', kind: 'feature', risks: ['output format is public'] };

/** An agent that logs each prompt and answers FIRST, or SECOND when re-asked. */
function agent(first: string, second = first): { config: AgentConfig; prompts: () => string[] } {
  const log = join(tmp, `prompts-${Math.random().toString(36).slice(2)}.jsonl`);
  const script = `let p='';process.stdin.on('data',(d)=>(p+=d)).on('end',()=>{require('fs').appendFileSync(process.env.LOG,JSON.stringify(p)+'\\n');process.stdout.write(p.startsWith(process.env.MARK)?process.env.SECOND:process.env.FIRST)})`;
  return {
    // The log is outside the workspace, so this agent runs unisolated (driver none): the values reach it
    // by name through the environment allowlist, as an operator's agent.env would.
    config: {
      command: ['node', '-e', script],
      timeoutMs: 10_000,
      sandbox: unisolated,
      env: named({ LOG: log, MARK: CORRECTIVE_MARKER, FIRST: first, SECOND: second }),
    },
    prompts: () =>
      readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string),
  };
}

const unisolated = createSandbox({ driver: 'none' });
/** Puts the values in this process's environment (each agent is used before the next is made); returns their names. */
function named(values: Record<string, string>): string[] {
  Object.assign(process.env, values);
  return Object.keys(values);
}

const claudeEnvelope = (result: string) =>
  JSON.stringify({
    type: 'result',
    subtype: 'success',
    is_error: false,
    duration_ms: 1200,
    result,
    session_id: 's-1',
    total_cost_usd: 0.01,
  });

it('finds the JSON in plain output, a fenced block amid prose, and Claude Code’s result envelope', () => {
  expect(extractJson(JSON.stringify(good))).toEqual({ ok: true, value: good });
  expect(extractJson(`Here is the analysis:\n\n\`\`\`json\n${JSON.stringify(good, null, 2)}\n\`\`\`\nAnything else?`)).toEqual({
    ok: true,
    value: good,
  });
  expect(extractJson(`\`\`\`text\nnot this\n\`\`\`\n\`\`\`json\n${JSON.stringify(good)}\n\`\`\``)).toEqual({ ok: true, value: good });
  expect(extractJson(claudeEnvelope(JSON.stringify(good)))).toEqual({ ok: true, value: good });
  expect(extractJson(claudeEnvelope(`Sure.\n\`\`\`json\n${JSON.stringify(good)}\n\`\`\``))).toEqual({ ok: true, value: good });
  expect(extractJson(`The answer is ${JSON.stringify(good)}.`)).toEqual({ ok: true, value: good });
  expect(extractJson('I could not decide.')).toMatchObject({ ok: false, problem: expect.stringMatching(/^the answer is not JSON/) });
  expect(extractJson('')).toEqual({ ok: false, problem: 'the answer was empty' });
  expect(extractJson(JSON.stringify({ type: 'result', subtype: 'error_max_turns', is_error: true, result: 'out of turns' }))).toMatchObject(
    {
      ok: false,
      problem: expect.stringContaining('error_max_turns'),
    },
  );
});

it('asks through a real agent process and validates: plain, fenced and enveloped answers', async () => {
  for (const output of [JSON.stringify(good), `\`\`\`json\n${JSON.stringify(good)}\n\`\`\``, claudeEnvelope(JSON.stringify(good))]) {
    const a = agent(output);
    await expect(askJson(a.config, { cwd: tmp, prompt: 'Analyze issue #1', schema: issueAnalysisSchema })).resolves.toEqual(good);
    expect(a.prompts()).toHaveLength(1);
  }
  // The request carries the answer format with the schema's JSON Schema.
  const a = agent(JSON.stringify({ goal: 'g', tasks: [{ title: 't', steps: [{ prompt: 'p' }] }] }));
  const plan = await askJson(a.config, { cwd: tmp, prompt: 'Write an implementation plan', schema: planSchema });
  expect(plan).toEqual({
    goal: 'g',
    details: '',
    tasks: [{ title: 't', description: '', files: [], steps: [{ prompt: 'p', done: false }] }],
  });
  expect(a.prompts()[0]).toMatch(/^Write an implementation plan\n\n## Answer format\n[\s\S]*"required": \[\s*"goal",\s*"tasks"\s*\]/);
});

it('re-asks once with the zod issues and the original request, and takes the corrected answer', async () => {
  const a = agent(JSON.stringify({ summary: 'x', kind: 'epic' }), claudeEnvelope(JSON.stringify(good)));
  const reasked: OutputIssue[][] = [];
  const result = await askJson(a.config, {
    cwd: tmp,
    prompt: 'Analyze issue #7: the CLI',
    schema: issueAnalysisSchema,
    name: 'analysis',
    onReask: (i) => reasked.push(i),
  });
  expect(result).toEqual(good);
  expect(reasked).toEqual([[{ path: 'kind', message: expect.stringMatching(/^Invalid option/) }]]);
  const [first, second] = a.prompts();
  expect(second).toMatch(new RegExp(`^${CORRECTIVE_MARKER.replace(/\./g, '\\.')}\\n\\nProblems:\\n- kind: Invalid option`));
  expect(second).toContain('"kind":"epic"'); // the previous answer, so the agent sees what it said
  expect(second?.endsWith(`## The original request\n\n${first}`)).toBe(true);
});

it('fails with category agent, naming the zod issues, when the re-asked answer is invalid too', async () => {
  const a = agent(JSON.stringify({ goal: 'g', tasks: [{ title: 't', steps: 'all' }] }));
  const err = await askJson(a.config, { cwd: tmp, prompt: 'Write an implementation plan', schema: planSchema, name: 'plan' }).catch(
    (e: unknown) => e,
  );
  expect(toErrorData(err)).toMatchObject({
    category: 'agent',
    code: 'AGENT_OUTPUT_INVALID',
    details: { name: 'plan', issues: [{ path: 'tasks.0.steps' }] },
  });
  expect((err as Error).message).toBe(
    "The coding agent's plan was invalid, also after a corrective re-ask: tasks.0.steps: Invalid input: expected array, received string",
  );
  expect(a.prompts()).toHaveLength(2);

  const prose = agent('I think it is a feature.');
  const notJson = await askJson(prose.config, { cwd: tmp, prompt: 'Analyze', schema: issueAnalysisSchema }).catch((e: unknown) => e);
  expect(toErrorData(notJson).category).toBe('agent');
  expect((notJson as Error).message).toMatch(/answer was invalid, also after a corrective re-ask: \(root\): the answer is not JSON/);
});

it('an agent that exits non-zero fails at once (category agent), without a re-ask', async () => {
  const err = await askJson(
    { command: ['node', '-e', 'process.stderr.write("no credits"); process.exit(2)'], timeoutMs: 10_000, sandbox: testSandbox },
    { cwd: tmp, prompt: 'Analyze', schema: issueAnalysisSchema },
  ).catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ category: 'agent', code: 'AGENT_FAILED' });
  expect((err as Error).message).toContain('no credits');
});

it('plans: the schema refuses a missing goal and bad steps; YAML renders and parses back', () => {
  const task = { title: 'CLI flag', description: 'Add --json', files: ['src/cli.ts'], steps: [{ prompt: 'Add the flag', done: false }] };
  const issuesOf = (v: unknown) => planSchema.safeParse(v).error?.issues.map((i) => i.path.join('.'));
  expect(issuesOf({ details: '', tasks: [task] })).toEqual(['goal']);
  expect(issuesOf({ goal: 'g', tasks: [{ ...task, steps: 'do it' }] })).toEqual(['tasks.0.steps']);
  expect(issuesOf({ goal: 'g', tasks: [{ ...task, steps: [] }] })).toEqual(['tasks.0.steps']);
  expect(issuesOf({ goal: 'g', tasks: [{ ...task, steps: [{ done: 'yes' }] }] })).toEqual([
    'tasks.0.steps.0.prompt',
    'tasks.0.steps.0.done',
  ]);
  expect(issuesOf({ goal: 'g', tasks: [] })).toEqual(['tasks']);

  const plan = { goal: 'Machine-readable output', details: 'Line one.\nLine two: with a colon.', tasks: [task] };
  const yaml = renderPlanYaml(plan);
  expect(yaml).toMatch(/^goal: Machine-readable output\ndetails: \|-\n {2}Line one\.\n/);
  expect(parsePlanYaml(yaml)).toEqual(plan);
  expect(() => parsePlanYaml('goal: g\ntasks:\n  - title: t\n    steps: nope\n')).toThrow(/tasks\.0\.steps: Invalid input: expected array/);
  expect(() => parsePlanYaml('goal: [unclosed')).toThrow(/not valid YAML/);
  expect(yamlBlock('a: "```"\n')).toBe('````yaml\na: "```"\n````');
});
