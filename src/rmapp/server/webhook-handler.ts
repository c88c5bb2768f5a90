/**
 * `POST /webhooks/github`: verify, filter, store, answer — in milliseconds. A request without a
 * signature or GitHub's headers is refused before its body is read; the body is bounded by size (413)
 * and by time (408), so slow or huge bodies cannot hold the route. The signature (X-Hub-Signature-256)
 * is checked over the bytes received, before anything is decoded or parsed; a relevant delivery becomes one
 * `GitHubDelivery` run keyed by what it is about — a comment's or review's id, or the body's digest (a
 * redelivery or a replayed copy is the same run: executor.ts `deliveryKey`) — and workers do the rest.
 * A delivery about an event older than GitHub redelivers is ignored: the run that knew it may have been
 * deleted by retention, so a kept copy sent again would start the work again (webhooks/event.ts
 * `WEBHOOK_EVENT_MAX_AGE_MS`). Text the database cannot hold (NUL, lone surrogates) is stored as U+FFFD.
 * Nothing is stored for a bad signature, bad JSON or an ignored event; no payload, however malformed,
 * gets a 5xx.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ZodError } from 'zod';
import type { Logger } from '../logger.ts';
import { normalizeWebhook } from '../webhooks/event.ts';
import type { WorkflowExecutor } from '../workflows/executor.ts';
import { ValidationError } from '../../state_machine/errors.ts';
import { BodyAbortedError, BodyTimeoutError, BodyTooLargeError, discardBody, readBody, sendJson } from './http-util.ts';

export interface WebhookHandlerOptions {
  secret: string;
  botName: string;
  labels: Record<string, string>;
  executor: WorkflowExecutor;
  log: Logger;
  /** Largest accepted body. Default 1 MiB (rmapp's events are far smaller; GitHub caps at 25 MB). */
  maxBodyBytes?: number | undefined;
  /**
   * Time for the whole body to arrive, from the moment the handler starts reading. A slower client gets
   * 408 and its connection is closed, so slow bodies cannot pile up. Default 10 s (GitHub sends at once).
   */
  bodyTimeoutMs?: number | undefined;
}

/** Builds the handler. */
export function webhookHandler(options: WebhookHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  const deadlineMs = options.bodyTimeoutMs ?? 10_000;
  /** Answers before (or instead of) reading the rest of the body, which is thrown away within the deadline. */
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, error: string) => {
    discardBody(req, deadlineMs);
    sendJson(res, status, { error });
  };
  return async (req, res) => {
    const delivery = header(req, 'x-github-delivery');
    const name = header(req, 'x-github-event');
    const signature = header(req, 'x-hub-signature-256');
    const log = options.log.child({ delivery, event: name });
    // What needs no body is refused before reading one.
    if (!signature) return refuse(req, res, 401, 'Missing X-Hub-Signature-256: configure the webhook secret on GitHub.');
    if (!delivery || !name) return refuse(req, res, 400, 'Missing X-GitHub-Delivery or X-GitHub-Event header.');
    let raw: Buffer;
    try {
      raw = await readBody(req, { limit, deadlineMs });
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        log.warn({ limit }, 'webhook body too large');
        return refuse(req, res, 413, `Body larger than ${limit} bytes.`);
      }
      if (err instanceof BodyTimeoutError) {
        log.warn({ deadlineMs }, 'webhook body too slow; connection closed');
        res.once('finish', () => req.socket.destroy());
        return sendJson(res, 408, { error: `Body not received within ${deadlineMs} ms.` }, { connection: 'close' });
      }
      if (err instanceof BodyAbortedError) return void log.debug('webhook client went away mid-body');
      throw err;
    }
    // The signature first: a request not signed with the secret is told nothing about its body.
    if (!signatureMatches(options.secret, raw, signature)) {
      log.warn('webhook signature does not match');
      return sendJson(res, 401, { error: 'Signature does not match: the webhook secret on GitHub and GITHUB_WEBHOOK_SECRET differ.' });
    }
    if (raw.length === 0) return sendJson(res, 400, { error: 'Body is empty: GitHub sends the event as a JSON body.' });
    let payload: unknown;
    try {
      // Bytes that are not UTF-8 become U+FFFD here, after the signature was checked on what was sent.
      payload = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendJson(res, 400, { error: 'Body is not JSON: set the webhook content type to application/json.' });
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload))
      return sendJson(res, 400, { error: 'Body is not a JSON object.' });
    let normalized;
    try {
      normalized = normalizeWebhook(name, delivery, payload as object, options);
    } catch (err) {
      if (!(err instanceof ZodError)) throw err;
      const problems = err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      log.warn({ problems }, 'webhook payload rejected');
      return sendJson(res, 400, { error: `Payload of ${name} is missing what rmapp needs: ${problems}.` });
    }
    if (normalized.kind === 'ignored') {
      if (normalized.stale) log.warn({ reason: normalized.reason }, 'webhook about an event older than GitHub redelivers: ignored');
      else log.debug({ reason: normalized.reason }, 'webhook ignored');
      return sendJson(res, 202, { ignored: normalized.reason });
    }
    // A close or a label's removal only stops unfinished runs (delivery-stop.ts `stopRuns`): on an issue
    // with none — most issues closed never had a run — nothing is stored.
    const { input } = normalized;
    if (input.event === 'issues' && input.action !== 'labeled') {
      const subject = { owner: input.owner, repo: input.repo, kind: 'issues' as const, number: input.number };
      if (!(await options.executor.activeRun(subject))) return sendJson(res, 202, { ignored: `issues.${input.action}: no unfinished run` });
    }
    let runId: string;
    try {
      runId = await options.executor.startForEvent(normalized.input, createHash('sha256').update(raw).digest('hex'));
    } catch (err) {
      // The engine's own input check (text normalizeWebhook should already have made storable): the payload's fault.
      if (!(err instanceof ValidationError)) throw err;
      log.warn({ err: err.message }, 'webhook payload refused by the engine');
      return sendJson(res, 400, { error: `Payload of ${name} cannot be stored: ${err.message}` });
    }
    log.info(
      {
        runId,
        action: normalized.input.action,
        repo: `${normalized.input.owner}/${normalized.input.repo}`,
        number: normalized.input.number,
      },
      'webhook accepted',
    );
    return sendJson(res, 202, { runId });
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of the body's bytes as received, compared in
 * constant time. Over the bytes, not a decoded string: a body that is not valid UTF-8 decodes to
 * U+FFFD, and its genuine signature did not match the re-encoded text (a signed delivery was refused
 * as forged).
 */
export function signatureMatches(secret: string, body: Buffer, header: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
