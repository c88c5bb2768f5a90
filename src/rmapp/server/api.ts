/**
 * The JSON API under `/api` that the dashboard uses (and scripts may): runs with filters, one run
 * with its history, children, artifacts and statechart (laid out by chart-layout.ts), artifact contents, cancel and retry, the
 * workflows with their input's JSON Schema; starting runs and sending events are in api-writes.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chartOf } from '../../state_machine/chart.ts';
import type { Engine } from '../../state_machine/engine.ts';
import { RunNotFoundError, RunStateError, ValidationError } from '../../state_machine/errors.ts';
import { createMasker, type Masker } from '../masking.ts';
import { handleApiWrites } from './api-writes.ts';
import { chartLayout } from './chart-layout.ts';
import { decodeParam, queryParam, sendJson } from './http-util.ts';
import { runListFilter } from './run-list-query.ts';
import { withoutErrorStacks } from './error-stacks.ts';
import { z } from 'zod';

/** History entries a run's answer holds (its newest); `GET /api/runs/:id/history` has them all. */
export const HISTORY_SHOWN = 2_000;

/**
 * Handles `/api/...`; returns false when no route matched. Malformed percent-escapes and NUL bytes in
 * path segments or query values are a 400 ({@link decodeParam}) before anything reaches the database.
 */
export async function handleApi(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  masker: Masker = createMasker(),
): Promise<boolean> {
  // Runs carry errors, outputs and artifacts that may quote a secret (a test's output): every answer is
  // masked on the way out, refusals too (a retry refused quotes the run's error).
  // Without the errors' stacks, which name the server's files (error-stacks.ts).
  const send = (status: number, body: unknown): void => sendJson(res, status, masker.value(withoutErrorStacks(body)));
  const ok = (body: unknown): void => send(200, body);
  const segments = url.pathname.split('/').filter(Boolean).slice(1); // after "api"
  const parts = segments.map((s, i) => decodeParam(s, i === 1 ? 'run id' : i === 3 ? 'artifact name' : 'path segment'));
  const query = (name: string) => queryParam(url, name);
  // HEAD is answered as GET is, headers only (Node's server writes no body for it): what a monitor or a
  // link checker sends.
  const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
  try {
    if (method === 'GET' && parts.length === 1 && parts[0] === 'runs') {
      ok({ runs: (await engine.list(runListFilter(query))).map(summary) });
      return true;
    }
    if (method === 'GET' && parts.length === 1 && parts[0] === 'workflows') {
      ok({ workflows: engine.definitions().map((d) => ({ name: d.name, version: d.version, inputSchema: inputSchemaOf(d.input) })) });
      return true;
    }
    if (await handleApiWrites(engine, req, res, parts, send)) return true;
    if (parts[0] !== 'runs' || parts.length < 2) return false;
    const id = parts[1] as string;
    if (method === 'GET' && parts.length === 3 && parts[2] === 'history') {
      ok({ history: await engine.history(id) });
      return true;
    }
    if (method === 'GET' && parts.length === 2) {
      const run = await engine.get(id);
      const [all, artifacts] = await Promise.all([engine.history(id), engine.artifacts(id)]);
      // The newest entries only: a run with 30,000 entries answered 5.4 MB, which the run page drew
      // again on every change (33 s, then 4–7 s per change). The whole history is at …/history.
      const history = all.length > HISTORY_SHOWN ? all.slice(-HISTORY_SHOWN) : all;
      const def = engine.definition(run.workflow, run.workflowVersion);
      const children = await engine.list({ parentRunId: id, limit: 100 });
      // A failed run's queued signals: what a retry delivers, and the ids {"dropSignal": id} can leave out.
      const queuedSignals = run.status === 'failed' ? await engine.queuedSignals(id, 20) : undefined;
      const chart = def ? chartOf(def.machine) : null;
      // Without a layout (ELK failed on this chart) the dashboard lays the chart out itself.
      const layout = def && chart ? await chartLayout(`${def.name}@${def.version}`, chart).catch(() => null) : null;
      ok({
        run: { ...run, children: run.children },
        history,
        historyTotal: all.length,
        artifacts,
        childRuns: children.map(summary),
        ...(queuedSignals ? { queuedSignals } : {}),
        chart,
        layout,
      });
      return true;
    }
    if (method === 'GET' && parts.length === 4 && parts[2] === 'artifacts') {
      const value = await engine.getArtifact(id, parts[3] as string);
      if (value === undefined) send(404, { error: `Run ${id} has no artifact "${parts[3]}".` });
      else ok({ name: parts[3], value });
      return true;
    }
    if (method === 'POST' && parts.length === 3 && parts[2] === 'cancel') {
      ok(await engine.cancel(id, 'cancelled from the dashboard'));
      return true;
    }
    return false;
  } catch (err) {
    if (err instanceof RunNotFoundError) {
      send(404, { error: err.message });
      return true;
    }
    if (err instanceof ValidationError) {
      // 409: the request does not fit the run's state (retrying a run that did not fail, say);
      // 400: the request itself is wrong (an artifact name no artifact can have).
      send(err instanceof RunStateError ? 409 : 400, { error: err.message });
      return true;
    }
    throw err;
  }
}

/**
 * The methods a path of the API takes, by its shape (`/api/runs/<id>/history`, …); null for a path that
 * is no route. A route asked with another method is a 405 naming them (`DELETE /api/runs` was a 404,
 * "No API route", as if the path were wrong).
 */
export function apiRouteMethods(pathname: string): string[] | null {
  // Decoded as the routes read them (`%68istory` is `history`); a segment that does not decode is no route's.
  const decode = (segment: string) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return '';
    }
  };
  const p = pathname.split('/').filter(Boolean).slice(1).map(decode);
  const read = ['GET', 'HEAD'];
  if (p.length === 1) return p[0] === 'runs' ? [...read, 'POST'] : p[0] === 'workflows' || p[0] === 'stream' ? read : null;
  if (p[0] !== 'runs') return null;
  if (p.length === 2) return read;
  if (p.length === 3) return p[2] === 'history' ? read : p[2] === 'cancel' || p[2] === 'retry' || p[2] === 'events' ? ['POST'] : null;
  return p.length === 4 && p[2] === 'artifacts' ? read : null;
}

function summary(run: Awaited<ReturnType<Engine['get']>>) {
  return {
    id: run.id,
    workflow: run.workflow,
    status: run.status,
    state: run.state,
    error: run.error,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    finishedAt: run.finishedAt,
    parentRunId: run.parentRunId,
    statusMessage: run.statusMessage,
    wakeAt: run.wakeAt,
    subject: subjectOf(run.input),
  };
}

/**
 * What a run is about, for the runs list and its search: `owner/repo#n` for the GitHub workflows,
 * else the input's first short text field (`orderId: A-1`); null when the input has none.
 */
function subjectOf(input: unknown): string | null {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return null;
  const i = input as Record<string, unknown>;
  const n = i.issueNumber ?? i.pullNumber ?? i.number;
  if (typeof i.owner === 'string' && typeof i.repo === 'string') return `${i.owner}/${i.repo}${typeof n === 'number' ? `#${n}` : ''}`;
  const text = Object.entries(i).find(([, v]) => typeof v === 'string' && v.length > 0 && v.length <= 80);
  return text ? `${text[0]}: ${text[1] as string}` : null;
}

/**
 * The JSON Schema of a workflow's input, as the dashboard's start form needs it (zod 4's
 * `z.toJSONSchema`, input side: defaults are optional); null when the schema cannot be described
 * (the form then takes raw JSON). What zod cannot express (a transform, a custom check) is left open.
 */
function inputSchemaOf(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  } catch {
    return null;
  }
}
