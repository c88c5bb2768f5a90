/**
 * `POST /webhooks/github`: verify, filter, store, answer — in milliseconds. The signature
 * (X-Hub-Signature-256) is checked with `@octokit/webhooks` before anything is parsed; a relevant
 * delivery becomes one `GitHubDelivery` run keyed by X-GitHub-Delivery (a redelivery is the same
 * run), and workers do the rest. Nothing is stored for a bad signature, bad JSON or an ignored event.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Webhooks } from '@octokit/webhooks';
import { ZodError } from 'zod';
import type { Logger } from '../logger.ts';
import { normalizeWebhook } from '../webhooks/event.ts';
import type { WorkflowExecutor } from '../workflows/executor.ts';
import { readBody, sendJson, BodyTooLargeError } from './http-util.ts';

export interface WebhookHandlerOptions {
  secret: string;
  botName: string;
  labels: Record<string, string>;
  executor: WorkflowExecutor;
  log: Logger;
  /** Largest accepted body. Default 1 MiB (rmapp's events are far smaller; GitHub caps at 25 MB). */
  maxBodyBytes?: number | undefined;
}

/** Builds the handler. */
export function webhookHandler(options: WebhookHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const webhooks = new Webhooks({ secret: options.secret });
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  return async (req, res) => {
    const delivery = header(req, 'x-github-delivery');
    const name = header(req, 'x-github-event');
    const signature = header(req, 'x-hub-signature-256');
    const log = options.log.child({ delivery, event: name });
    let body: string;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        log.warn({ limit }, 'webhook body too large');
        return sendJson(res, 413, { error: `Body larger than ${limit} bytes.` });
      }
      throw err;
    }
    if (!signature) return sendJson(res, 401, { error: 'Missing X-Hub-Signature-256: configure the webhook secret on GitHub.' });
    if (!(await webhooks.verify(body, signature).catch(() => false))) {
      log.warn('webhook signature does not match');
      return sendJson(res, 401, { error: 'Signature does not match: the webhook secret on GitHub and GITHUB_WEBHOOK_SECRET differ.' });
    }
    if (!delivery || !name) return sendJson(res, 400, { error: 'Missing X-GitHub-Delivery or X-GitHub-Event header.' });
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { error: 'Body is not JSON: set the webhook content type to application/json.' });
    }
    if (!payload || typeof payload !== 'object') return sendJson(res, 400, { error: 'Body is not a JSON object.' });
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
      log.debug({ reason: normalized.reason }, 'webhook ignored');
      return sendJson(res, 202, { ignored: normalized.reason });
    }
    const runId = await options.executor.startForEvent(normalized.input);
    log.info({ runId, action: normalized.input.action, repo: `${normalized.input.owner}/${normalized.input.repo}`, number: normalized.input.number }, 'webhook accepted');
    return sendJson(res, 202, { runId });
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
