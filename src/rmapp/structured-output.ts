/**
 * Structured answers from the coding agent (the analysis, the plan): asked as JSON, validated with
 * zod, and re-asked once with the problems named when the answer is not right. Agents get JSON wrong
 * often enough that failing at once wastes runs, and rarely twice in a row after being told exactly
 * what was wrong; a second bad answer fails the step with category `agent` (not retried by default,
 * since asking a third time the same way is unlikely to help).
 */
import { z } from 'zod';
import { WorkflowError } from '../state_machine/errors.ts';
import { runAgent, type AgentConfig, type AgentSession } from './agent-runner.ts';

/**
 * The first line of the corrective re-ask. Stable on purpose: the scripted agent
 * (`src/rmapp/demo/scripted-agent.mjs`) recognises the re-ask by it.
 */
export const CORRECTIVE_MARKER = 'Your previous answer did not match the requested JSON.';

/** A problem with an answer: a zod issue (`path` dotted, empty for the root) or "not JSON". */
export interface OutputIssue {
  path: string;
  message: string;
}

/** What {@link extractJson} found. */
export type ExtractedJson = { ok: true; value: unknown } | { ok: false; problem: string };

/** A JSON request to the agent. */
export interface JsonRequest<S extends z.ZodType> {
  /** Where the agent runs (a workspace, so it can read the code). */
  cwd: string;
  /** The request; the answer format (with the JSON Schema of `schema`) is appended to it. */
  prompt: string;
  schema: S;
  signal?: AbortSignal | undefined;
  /** What is asked, for messages (`analysis`, `plan`). Default `answer`. */
  name?: string | undefined;
  /** Called before the corrective re-ask, e.g. to record progress. */
  onReask?: ((issues: OutputIssue[]) => void) | undefined;
  /** The step whose artifacts keep the agent's transcripts (the answer and the re-ask each get one). */
  session?: AgentSession | undefined;
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Claude Code's `claude -p --output-format json` wraps the answer: `{"type":"result","result":"<text>",...}`. */
function unwrapEnvelope(value: unknown, depth: number): ExtractedJson {
  const v = value as Record<string, unknown> | null;
  const envelope = v !== null && typeof v === 'object' && !Array.isArray(v) && v.type === 'result' && ('result' in v || 'subtype' in v);
  if (!envelope || depth > 0) return { ok: true, value };
  if (v.is_error === true)
    return { ok: false, problem: `the agent reported an error (${String(v.subtype ?? 'error')}): ${String(v.result ?? '').slice(0, 300)}` };
  if (typeof v.result !== 'string')
    return { ok: false, problem: `the agent's result envelope holds no result text (subtype ${String(v.subtype)})` };
  return extractFrom(v.result, depth + 1);
}

function extractFrom(text: string, depth: number): ExtractedJson {
  const trimmed = text.trim();
  if (!trimmed) return { ok: false, problem: 'the answer was empty' };
  const whole = tryParse(trimmed);
  if (whole.ok) return unwrapEnvelope(whole.value, depth);
  // Fenced blocks, ```json ones first: agents like to wrap JSON in Markdown, sometimes with prose.
  const blocks = [...trimmed.matchAll(/```([\w-]*)[^\n]*\n([\s\S]*?)```/g)].sort(
    (a, b) => Number(b[1] === 'json') - Number(a[1] === 'json'),
  );
  for (const block of blocks) {
    const parsed = tryParse((block[2] ?? '').trim());
    if (parsed.ok) return unwrapEnvelope(parsed.value, depth);
  }
  // Last resort: the outermost braces ("Here is the plan: {...}").
  const start = trimmed.indexOf('{');
  const end = trimmed.lastIndexOf('}');
  if (start >= 0 && end > start) {
    const parsed = tryParse(trimmed.slice(start, end + 1));
    if (parsed.ok) return unwrapEnvelope(parsed.value, depth);
  }
  return { ok: false, problem: `the answer is not JSON (${whole.error})` };
}

/**
 * Finds the JSON in an agent's answer: plain JSON, a fenced ```json block, JSON amid prose, or any of
 * these inside Claude Code's result envelope.
 *
 * @example
 * extractJson('{"type":"result","result":"```json\\n{\\"a\\":1}\\n```"}'); // { ok: true, value: { a: 1 } }
 */
export function extractJson(text: string): ExtractedJson {
  return extractFrom(text, 0);
}

/** Extracts and validates an answer; the issues name each problem by path. */
export function checkAnswer<S extends z.ZodType>(
  text: string,
  schema: S,
): { ok: true; value: z.output<S> } | { ok: false; issues: OutputIssue[] } {
  const found = extractJson(text);
  if (!found.ok) return { ok: false, issues: [{ path: '', message: found.problem }] };
  const result = schema.safeParse(found.value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, issues: result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) };
}

/** `goal: Invalid input…; tasks.0.steps: …` — at most `max` issues, then a count. */
export function formatIssues(issues: OutputIssue[], max = 8): string {
  const shown = issues.slice(0, max).map((i) => `${i.path || '(root)'}: ${i.message}`);
  return `${shown.join('; ')}${issues.length > max ? `; and ${issues.length - max} more` : ''}`;
}

function answerFormat(schema: z.ZodType): string {
  // `io: 'input'`: fields with defaults are optional to the agent; `unrepresentable: 'any'` keeps
  // refinements and transforms from throwing here.
  const jsonSchema = JSON.stringify(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }), null, 2);
  return `## Answer format\n\nAnswer with one JSON object and nothing else (no prose; a single \`\`\`json block is also accepted). It must match this JSON Schema:\n\n\`\`\`json\n${jsonSchema}\n\`\`\`\n`;
}

function correctivePrompt(request: string, issues: OutputIssue[], previous: string): string {
  const problems = issues.map((i) => `- ${i.path || '(root)'}: ${i.message}`).join('\n');
  const tail = previous.trim().slice(-2000) || '(nothing)';
  return `${CORRECTIVE_MARKER}\n\nProblems:\n${problems}\n\nYour previous answer${previous.trim().length > 2000 ? ' (its end)' : ''}:\n\n\`\`\`text\n${tail}\n\`\`\`\n\nAnswer the original request again: one JSON object matching the schema, nothing else.\n\n## The original request\n\n${request}`;
}

/**
 * Asks the agent for JSON matching `schema` (prompt on stdin, never a shell), re-asks once with the
 * problems named when the answer is invalid, and fails with category `agent` (code
 * `AGENT_OUTPUT_INVALID`) when the second answer is invalid too. An agent that exits non-zero fails
 * as {@link runAgent} does, without a re-ask.
 *
 * @example
 * const plan = await askJson(config.agent, { cwd: ws.dir, prompt: 'Write an implementation plan for …', schema: planSchema, signal, name: 'plan' });
 */
export async function askJson<S extends z.ZodType>(agent: AgentConfig, request: JsonRequest<S>): Promise<z.output<S>> {
  const name = request.name ?? 'answer';
  const prompt = `${request.prompt.trimEnd()}\n\n${answerFormat(request.schema)}`;
  // The agent's answer: its final message (Claude Code's `result`, Codex's last message; a command's stdout).
  const first = (await runAgent(agent, { cwd: request.cwd, prompt, signal: request.signal, session: request.session })).text;
  const checked = checkAnswer(first, request.schema);
  if (checked.ok) return checked.value;
  request.onReask?.(checked.issues);
  const second = (
    await runAgent(agent, {
      cwd: request.cwd,
      prompt: correctivePrompt(prompt, checked.issues, first),
      signal: request.signal,
      session: request.session,
    })
  ).text;
  const rechecked = checkAnswer(second, request.schema);
  if (rechecked.ok) return rechecked.value;
  throw new WorkflowError(`The coding agent's ${name} was invalid, also after a corrective re-ask: ${formatIssues(rechecked.issues)}`, {
    code: 'AGENT_OUTPUT_INVALID',
    category: 'agent',
    details: { name, issues: rechecked.issues.slice(0, 20), firstIssues: checked.issues.slice(0, 20), output: second.slice(-2000) },
  });
}
