// The run page's step logs: what each step printed, as the artifacts it saved — the coding agent's
// sessions (`transcript/<step path>/attempt-<n>`: turns, tool calls, tokens, cost, the conversation)
// and the tests' output (`test-output`). A transcript is saved every second or so while the agent runs
// and /api/stream announces each save (event `artifact`): the panel of that artifact is fetched again
// and redrawn in place, so the session grows on the page without a reload.
import { esc } from '/html.js';

const TRANSCRIPT = 'transcript/';
const LOGS = (name) => name.startsWith(TRANSCRIPT) || name === 'test-output';
const num = (n) => Number(n ?? 0).toLocaleString('en-US');
const ms = (n) => (n < 1000 ? `${Math.round(n)} ms` : n < 60_000 ? `${(n / 1000).toFixed(1)} s` : `${(n / 60_000).toFixed(1)} min`);
const STATUS = {
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  budget_exceeded: 'failed',
  timed_out: 'failed',
};

/** `transcript/0.implementing#2/attempt-1/2` → `implementing #2 · attempt 1 · session 2`. */
function title(name, t) {
  if (!name.startsWith(TRANSCRIPT)) return name === 'test-output' ? 'test output (last run)' : name;
  const [path, attempt, k] = name.slice(TRANSCRIPT.length).split('/');
  const step = (path ?? '').split('.').at(-1);
  return `${step}${attempt ? ` · ${attempt.replace('-', ' ')}` : ''}${k ? ` · session ${k}` : ''}${t?.agent ? ` · ${t.agent}` : ''}`;
}

function entry(e) {
  const turn = `<span class="turn" title="turn">${esc(e.turn)}</span>`;
  switch (e.kind) {
    case 'text':
      return `<li class="e-text r-${esc(e.role)}">${turn}<span class="who">${esc(e.role)}</span><div class="say">${esc(e.text)}</div></li>`;
    case 'tool_call':
      return `<li class="e-call">${turn}<span class="who">▶ ${esc(e.name)}</span><code>${esc(e.input)}</code></li>`;
    case 'tool_result':
      return `<li class="e-result${e.isError ? ' bad' : ''}">${turn}<span class="who">◀ ${e.isError ? 'error' : 'result'}</span><pre>${esc(e.output)}</pre></li>`;
    case 'output':
      return `<li class="e-output">${turn}<span class="who">${esc(e.stream)}</span><pre>${esc(e.text)}</pre></li>`;
    default:
      return `<li class="e-error bad">${turn}<span class="who">error</span><div class="say">${esc(e.text)}</div></li>`;
  }
}

function transcriptHtml(t) {
  const u = t.usage ?? {};
  const facts = [
    `<span class="badge s-${esc(STATUS[t.status] ?? 'failed')}" data-status="${esc(t.status)}">${esc(String(t.status ?? '').replace('_', ' '))}</span>`,
    `<span data-fact="turns">${num(u.turns)} turns</span>`,
    `<span data-fact="tool-calls">${num(u.toolCalls)} tool calls</span>`,
    `<span data-fact="tokens">${num((u.inputTokens ?? 0) + (u.outputTokens ?? 0))} tokens${u.cachedInputTokens ? ` (${num(u.cachedInputTokens)} cached)` : ''}</span>`,
    u.costUsd === null || u.costUsd === undefined ? '' : `<span data-fact="cost">$${Number(u.costUsd).toFixed(4)}</span>`,
    `<span>${ms(u.durationMs ?? 0)}</span>`,
  ].filter(Boolean);
  const entries = t.entries ?? [];
  const head = entries.slice(0, 10).map(entry).join('');
  const rest = entries.slice(10).map(entry).join('');
  const gap = t.omittedEntries ? `<li class="gap muted">… ${num(t.omittedEntries)} entries left out …</li>` : '';
  return `<p class="facts">${facts.join(' · ')}</p>${t.reason ? `<p class="error">${esc(t.reason)}</p>` : ''}
    <ol class="transcript">${head}${gap}${rest}</ol>${t.result ? `<p class="muted">final message</p><pre class="result">${esc(t.result)}</pre>` : ''}`;
}

/** Keeps the `#logs` section of a run page in step with its artifacts. */
export function stepLogs(box, runId, fetchArtifact) {
  const shown = new Map(); // name → { stamp, value, el }
  const opened = new Set(); // panels the reader opened or closed: their choice stays
  box.innerHTML =
    '<section id="logs"><h2>Step logs</h2><p class="muted" id="logs-empty">No step has saved a log yet.</p><div id="log-panels"></div></section>';
  const panels = box.querySelector('#log-panels');

  const draw = (name) => {
    const item = shown.get(name);
    const value = item.value;
    const isTranscript = name.startsWith(TRANSCRIPT) && value && typeof value === 'object';
    const running = isTranscript && value.status === 'running';
    const body = isTranscript
      ? transcriptHtml(value)
      : `<pre>${esc(typeof value === 'string' ? value : JSON.stringify(value, null, 2))}</pre>`;
    const open = opened.has(name) ? item.el?.open : running || item.el?.open || shown.size === 1;
    const el = item.el ?? document.createElement('details');
    // A live session follows its end, unless the reader scrolled up to read.
    const before = el.querySelector('ol.transcript');
    const follow = !before || before.scrollTop + before.clientHeight >= before.scrollHeight - 8;
    el.className = 'log';
    el.dataset.log = name;
    el.open = !!open;
    el.innerHTML = `<summary>${esc(title(name, isTranscript ? value : null))}${running ? ' <span class="muted">live</span>' : ''}</summary>${body}`;
    const list = el.querySelector('ol.transcript');
    if (list && running && follow) list.scrollTop = list.scrollHeight;
    if (!item.el) {
      el.addEventListener('toggle', () => opened.add(name));
      panels.append(el);
      item.el = el;
    }
    box.querySelector('#logs-empty').hidden = true;
  };

  // Saves come every second and fetches may answer out of order: only the latest fetch of a log is drawn,
  // or a slow answer to an earlier save could put a finished session back to "live".
  const latest = new Map(); // name → number of the last fetch started
  const load = async (name) => {
    const n = (latest.get(name) ?? 0) + 1;
    latest.set(name, n);
    const value = await fetchArtifact(name);
    if (latest.get(name) !== n) return;
    const item = shown.get(name) ?? {};
    item.value = value;
    shown.set(name, item);
    draw(name);
  };

  return {
    /** The run's artifact list (from each render of the run): fetches the logs that are new or changed. */
    async sync(artifacts) {
      const logs = artifacts.filter((a) => LOGS(a.name));
      await Promise.all(
        logs.map(async (a) => {
          const stamp = `${a.bytes}|${a.createdAt}`;
          const item = shown.get(a.name);
          if (item && item.stamp === stamp) return;
          shown.set(a.name, { ...item, stamp });
          await load(a.name);
        }),
      );
    },
    /** An `artifact` event of the live stream. */
    changed(change) {
      if (change.runId !== runId || !LOGS(change.name)) return;
      void load(change.name).catch((err) => console.error(err));
    },
  };
}
