// The run page's timeline (SVG bars: the CSP forbids inline styles): a waterfall of step attempts from the run's history (each bar from
// `step.started` to its end, with its duration; a failed attempt's backoff until `nextAttemptAt`; a
// step sleeping until a time), the signals the run took with their payloads, and, for a waiting run,
// the time it wakes up.
import { esc } from '/html.js';
const ms = (n) => (n < 1000 ? `${Math.round(n)} ms` : n < 60_000 ? `${(n / 1000).toFixed(1)} s` : `${(n / 60_000).toFixed(1)} min`);
const t = (d) => new Date(d).getTime();

/** The bars of the waterfall: attempts, backoffs and sleeps, in the order they began. */
function bars(history, now) {
  const out = [];
  const open = new Map(); // path|step|attempt → bar
  for (const h of history) {
    const key = `${h.path}|${h.step}|${h.attempt}`;
    if (h.type === 'step.started' || h.type === 'step.resumed') {
      const bar = { kind: 'attempt', label: `${h.step} #${h.attempt}`, from: t(h.at), to: null, status: 'running' };
      open.set(key, bar);
      out.push(bar);
    } else if (['step.succeeded', 'step.failed', 'step.retrying'].includes(h.type) && open.has(key)) {
      const bar = open.get(key);
      open.delete(key);
      bar.to = t(h.at);
      bar.status = h.type === 'step.succeeded' ? 'ok' : 'failed';
      if (h.data?.error) bar.error = `${h.data.error.category}: ${h.data.error.message}`;
      if (h.type === 'step.retrying' && h.data?.nextAttemptAt) {
        out.push({
          kind: 'backoff',
          label: `backoff before ${h.step} #${h.attempt + 1}`,
          from: bar.to,
          to: t(h.data.nextAttemptAt),
          status: 'wait',
        });
      }
    } else if (h.type === 'step.postponed' && open.has(key)) {
      // Its worker was stopping: the attempt's work did not run there; the next owner resumes it.
      const bar = open.get(key);
      open.delete(key);
      bar.to = t(h.at);
      bar.status = 'wait';
      bar.label += ' (postponed)';
    } else if (h.type === 'step.sleeping' && h.data?.until) {
      out.push({ kind: 'sleep', label: `${h.step} sleeps`, from: t(h.at), to: t(h.data.until), status: 'wait' });
    }
  }
  for (const bar of out) if (bar.to === null) bar.to = now;
  return out;
}

/** HTML of the timeline section for `run` and its `history`. */
export function timeline(run, history) {
  const now = Date.now();
  const list = bars(history, now);
  const wake = run.status === 'waiting' && run.wakeAt ? t(run.wakeAt) : null;
  const start = t(run.createdAt);
  const end = Math.max(run.finishedAt ? t(run.finishedAt) : now, wake ?? 0, ...list.map((b) => b.to));
  const span = Math.max(1, end - start);
  const pct = (x) => `${(((x - start) / span) * 100).toFixed(2)}%`;
  const width = (b) => `${Math.max(0.4, ((b.to - b.from) / span) * 100).toFixed(2)}%`;
  const rows = list.map(
    (b) =>
      `<div class="tl-row ${b.kind}" data-kind="${b.kind}"><span class="tl-label" title="${esc(b.error ?? '')}">${esc(b.label)}</span><svg class="tl-track" width="100%" height="14"><rect class="tl-bar ${b.status}" x="${pct(b.from)}" y="2" width="${width(b)}" height="10" rx="3"></rect></svg><span class="tl-dur">${b.kind === 'attempt' && b.status === 'running' ? 'running ' : ''}${ms(b.to - b.from)}</span></div>`,
  );
  const waking = wake
    ? `<p id="wake-up" class="wake">Waiting; wakes up at <b>${esc(new Date(wake).toLocaleString())}</b> (in ${ms(Math.max(0, wake - now))})</p>`
    : '';
  const signals = history.filter((h) => h.type === 'signal.received' || h.type === 'signal.buffered');
  const signalList = signals.length
    ? `<ul id="signals">${signals.map((h) => `<li><code>${esc(h.data?.event?.type)}</code> ${h.type === 'signal.buffered' ? '<span class="muted">(kept for later)</span> ' : ''}<span class="muted">${esc(new Date(h.at).toLocaleTimeString())}</span><pre>${esc(JSON.stringify(h.data?.event ?? {}, null, 2))}</pre></li>`).join('')}</ul>`
    : '<p class="muted">No signals.</p>';
  return `<section><h2>Timeline</h2>${waking}${rows.length ? `<div id="timeline" class="timeline">${rows.join('')}</div>` : '<p class="muted">No steps yet.</p>'}</section>
    <section><h2>Signals</h2>${signalList}</section>`;
}
