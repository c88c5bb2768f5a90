/**
 * The API's writes that start and steer runs (the dashboard's forms use them; scripts may):
 * `POST /api/runs` `{ workflow, input, idempotencyKey? }` → 201 `{ id }`, `POST /api/runs/:id/events`
 * with an event `{ type, ...payload }` → 202 `{ delivered, outcome }` (`?waitMs=` up to 10,000 waits for the
 * run to take it, so `outcome` can say `received` or `ignored` rather than `queued`), and
 * `POST /api/runs/:id/retry` with no body, `{ "dropSignal": true }` or `{ "dropSignal": <queued signal's id> }` → 200 `{ status, message }`. All sit behind the token, Host, Origin
 * and `X-Rmapp-Request` rules of every API write (http-server.ts). A client's mistake — a body that is
 * not a JSON object, an unknown workflow, input the workflow's schema refuses, a malformed or reserved
 * event, a run that has finished — is a 4xx whose message names what is wrong and how to fix it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Engine } from '../../state_machine/engine.ts';
import { RunNotFoundError, RunStateError, UnknownWorkflowError, WorkflowError } from '../../state_machine/errors.ts';
import { SizeLimitError } from '../../state_machine/limits.ts';
import { checkRetryOptions, type RetryOptions } from '../../state_machine/run-retry.ts';
import { inexactNumber, inexactNumberMessage } from '../json-numbers.ts';
import { ClientError, readClientBody } from './http-util.ts';
import { firstInvalidByte } from '../utf8.ts';
import { withFlagNames } from '../cli/flag-names.ts';

/** Largest body of a write (a run's input or an event); the engine has its own, tighter limits. */
const MAX_BODY_BYTES = 1024 * 1024;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The JSON object a write sends; a {@link ClientError} for anything else. `optional`: no body is `{}`. */
async function jsonObject(req: IncomingMessage, example: string, optional = false): Promise<Record<string, unknown>> {
  const bytes = await readClientBody(req, {
    limit: MAX_BODY_BYTES,
    deadlineMs: 10_000,
    tooLarge: 'send a reference (an artifact name, a URL) instead of the data',
  });
  if (optional && bytes.length === 0) return {};
  let raw: string;
  try {
    raw = STRICT_UTF8.decode(bytes);
  } catch {
    // Decoded leniently, the bad bytes became U+FFFD in a stored input the client never sent.
    const at = firstInvalidByte(bytes);
    throw new ClientError(400, `The body is not valid UTF-8${at >= 0 ? ` (byte ${at})` : ''}: JSON must be sent as UTF-8 text.`);
  }
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new ClientError(400, `The body is not JSON: send a JSON object such as ${example} with Content-Type: application/json.`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new ClientError(400, `The body must be a JSON object such as ${example}.`);
  const inexact = inexactNumber(raw);
  if (inexact) throw new ClientError(400, inexactNumberMessage('The body', inexact));
  return body as Record<string, unknown>;
}

/** A start body to show: the built-in example's, or one naming a workflow this server runs (the example may not be registered). */
function startExample(engine: Engine): string {
  const names = engine.definitions().map((d) => d.name);
  if (names.includes('example.order') || names.length === 0)
    return '{"workflow":"example.order","input":{"orderId":"A-1","amountCents":1200}}';
  return `{"workflow":${JSON.stringify(names[0])},"input":{…}}`;
}
const startBody = z
  .object({ workflow: z.string().min(1), input: z.unknown().optional(), idempotencyKey: z.string().min(1).max(200).optional() })
  .strict();

/** Longest `?waitMs=` of an event: a form waits for the outcome, not for a run that is not running. */
const MAX_EVENT_WAIT_MS = 10_000;

/** The `waitMs` query parameter of an event write (0 when absent); a {@link ClientError} when malformed. */
function eventWaitMs(req: IncomingMessage): number {
  const raw = new URL(req.url ?? '/', 'http://x').searchParams.get('waitMs');
  if (raw === null) return 0;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > MAX_EVENT_WAIT_MS)
    throw new ClientError(400, `waitMs must be a whole number of milliseconds from 0 to ${MAX_EVENT_WAIT_MS}, not "${raw.slice(0, 20)}".`);
  return Number(raw);
}

/**
 * The `Idempotency-Key` header of an event write: the engine's `dedupeKey` for it (null when absent).
 * A client that sends an event again after a timeout or a dropped connection — not knowing whether the
 * first one arrived — must not have it applied twice; the CLI has `--dedupe-key`, and Stripe's and the
 * IETF's `Idempotency-Key` is the header HTTP clients already send for this. A header, not a body field:
 * every other field of the body is the event's payload. Malformed: a {@link ClientError}.
 */
function eventDedupeKey(req: IncomingMessage): string | null {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return null;
  // A header sent twice reaches Node joined with ", " (and HTTP reads a comma as a list): two keys are not one.
  if (Array.isArray(raw) || raw === '' || raw.length > 200 || !/^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/.test(raw) || raw.includes(','))
    throw new ClientError(
      400,
      'The Idempotency-Key header must be one key of 1 to 200 printable ASCII characters without a comma (e.g. a UUID), the same each time the client sends this event again.',
    );
  return raw;
}

/** The engine's refusals of a client's request, as 4xx; anything else is the server's problem. */
function clientStatus(err: unknown): number | null {
  if (err instanceof RunNotFoundError) return 404;
  // Before the 400 of a validation error: the request is well-formed, the run's state refuses it.
  if (err instanceof RunStateError) return 409;
  if (err instanceof SizeLimitError) return 413;
  if (err instanceof UnknownWorkflowError) return 400;
  if (err instanceof WorkflowError && err.category === 'validation') return 400;
  return null;
}

/**
 * Handles the write routes (`parts`: the decoded path after `/api`); false when none matched.
 * The caller has checked the token, Host, Origin and `X-Rmapp-Request`.
 */
export async function handleApiWrites(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  parts: string[],
  /** Sends an answer, masked (the API's `send`): a refusal may quote a run's error. */
  send: (status: number, body: unknown) => void,
): Promise<boolean> {
  const method = req.method ?? 'GET';
  const start = method === 'POST' && parts.length === 1 && parts[0] === 'runs';
  const event = method === 'POST' && parts.length === 3 && parts[0] === 'runs' && parts[2] === 'events';
  const retry = method === 'POST' && parts.length === 3 && parts[0] === 'runs' && parts[2] === 'retry';
  if (!start && !event && !retry) return false;
  try {
    if (start) {
      const example = startExample(engine);
      const parsed = startBody.safeParse(await jsonObject(req, example));
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
        throw new ClientError(400, `Bad request to start a run (${problems}): send ${example}, with an optional "idempotencyKey".`);
      }
      const { workflow, input, idempotencyKey } = parsed.data;
      const id = await engine.start(workflow, input ?? {}, { idempotencyKey });
      send(201, { id });
      return true;
    }
    const id = parts[1] as string;
    if (retry) {
      const body = await jsonObject(req, '{"dropSignal":true}', true);
      let options: RetryOptions;
      try {
        options = checkRetryOptions(body);
      } catch (err) {
        throw new ClientError(
          400,
          `Bad request to retry a run: ${(err as Error).message} Send no body, {"dropSignal":true}, or {"dropSignal":<id>} naming a queued signal.`,
        );
      }
      send(200, await engine.retry(id, options));
      return true;
    }
    const waitMs = eventWaitMs(req);
    const dedupeKey = eventDedupeKey(req);
    const body = await jsonObject(req, '{"type":"approve"}');
    if (typeof body.type !== 'string' || body.type === '')
      throw new ClientError(400, 'The event needs a non-empty string "type", e.g. {"type":"approve"}; other fields are its payload.');
    const result = await engine
      .send(id, body as { type: string }, { waitMs, dedupeKey: dedupeKey ?? undefined })
      .catch((err: unknown) => Promise.reject(withFlagNames(err, { dedupeKey: 'the Idempotency-Key header' })));
    // A key sent again with another event is no retry of the first: answered 202 "duplicate", the client
    // believed its second event delivered when nothing was (Stripe answers such a request 422 too).
    if (result.differentEvent)
      throw new ClientError(
        422,
        `The Idempotency-Key "${dedupeKey}" was already used for another event to run ${id}, so this one was not sent: send a new key for a new event (the same key only to send the same event again).`,
      );
    send(202, { delivered: result.delivered, outcome: result.outcome });
    return true;
  } catch (err) {
    const status = clientStatus(err);
    if (status === null) throw err;
    send(status, { error: (err as Error).message });
    return true;
  }
}
