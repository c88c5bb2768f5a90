/**
 * Adversarial: the run page's step logs (src/rmapp/server/dashboard/logs.js) with hostile transcript
 * values, driven in node with a minimal stand-in for the DOM (the module only sets innerHTML strings):
 * no field reaches the markup unescaped, and a slow answer to an earlier fetch never replaces a later one
 * (a finished session must not go back to "live").
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const DASHBOARD = join(import.meta.dirname, '../src/rmapp/server/dashboard');
let dir: string;
type StepLogs = (
  box: unknown,
  runId: string,
  fetch: (name: string) => Promise<unknown>,
) => { sync(a: { name: string; bytes: number; createdAt: string }[]): Promise<void>; changed(c: { runId: string; name: string }): void };
let stepLogs: StepLogs;

class FakeElement {
  innerHTML = '';
  className = '';
  open = false;
  hidden = false;
  dataset: Record<string, string> = {};
  children: FakeElement[] = [];
  private readonly parts = new Map<string, FakeElement>();
  querySelector(sel: string): FakeElement | null {
    if (sel === 'ol.transcript') return null;
    let el = this.parts.get(sel);
    if (!el) this.parts.set(sel, (el = new FakeElement()));
    return el;
  }
  append(el: FakeElement) {
    this.children.push(el);
  }
  addEventListener() {}
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'adv-logs-'));
  const html = pathToFileURL(join(DASHBOARD, 'html.js')).href;
  writeFileSync(join(dir, 'logs.mjs'), readFileSync(join(DASHBOARD, 'logs.js'), 'utf8').replace("'/html.js'", `'${html}'`));
  (globalThis as { document?: unknown }).document = { createElement: () => new FakeElement() };
  ({ stepLogs } = (await import(pathToFileURL(join(dir, 'logs.mjs')).href)) as { stepLogs: StepLogs });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  delete (globalThis as { document?: unknown }).document;
});

const XSS = '<img src=x onerror=alert(1)>';

it('no field of a transcript reaches the page unescaped', async () => {
  const box = new FakeElement();
  const hostile = {
    agent: XSS,
    status: XSS,
    reason: XSS,
    result: XSS,
    usage: { turns: XSS, toolCalls: 1, inputTokens: 1, outputTokens: 1, costUsd: 1, durationMs: 5 },
    entries: [
      { kind: 'text', role: XSS, text: XSS, turn: XSS },
      { kind: 'tool_call', name: XSS, input: XSS, turn: 1 },
      { kind: 'tool_result', output: XSS, isError: true, turn: 1 },
      { kind: 'output', stream: XSS, text: XSS, turn: 1 },
      { kind: XSS, text: XSS, turn: 1 },
    ],
  };
  const logs = stepLogs(box, 'run-1', async () => hostile);
  await logs.sync([{ name: `transcript/0.${XSS}/attempt-1`, bytes: 1, createdAt: 'a' }]);
  const panel = (box.querySelector('#log-panels') as FakeElement).children[0] as FakeElement;
  expect(panel.innerHTML).toContain('&lt;img');
  expect(panel.innerHTML, 'an unescaped tag reached the step logs').not.toContain('<img');
});

it('a slow answer to an earlier fetch does not overwrite the finished session', async () => {
  const box = new FakeElement();
  const answers: ((v: unknown) => void)[] = [];
  const logs = stepLogs(box, 'run-1', () => new Promise((resolve) => answers.push(resolve)));
  const name = 'transcript/0.implementing/attempt-1';
  const t = (status: string) => ({ agent: 'command', status, usage: {}, entries: [] });
  logs.changed({ runId: 'run-1', name }); // a save while it runs
  logs.changed({ runId: 'run-1', name }); // the final save
  answers[1]?.(t('succeeded'));
  await new Promise((r) => setTimeout(r, 10));
  answers[0]?.(t('running'));
  await new Promise((r) => setTimeout(r, 10));
  const panel = (box.querySelector('#log-panels') as FakeElement).children[0] as FakeElement;
  expect(panel.innerHTML).toContain('data-status="succeeded"');
  expect(panel.innerHTML, 'the earlier "running" answer was drawn last').not.toContain('live');
});
