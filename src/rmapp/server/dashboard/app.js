// The rmapp dashboard: a runs list with status filters and a run page with its statechart, history,
// attempts and errors, progress, artifacts, children, and cancel/retry. Plain ES modules, no build
// step; it follows /api/stream to re-render when a run changes (polling every 2 s only without it).
import { acceptedEvents, eventForm, startForm } from '/forms.js';
import { timeline } from '/timeline.js';
import { drawLaidOut } from '/chart.js';

const app = document.getElementById('app');
const live = document.getElementById('live');
const STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'];
let timer = null;

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const badge = (status) => `<span class="badge s-${esc(status)}" data-status="${esc(status)}">${esc(status)}</span>`;
const stateText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
const when = (d) => (d ? new Date(d).toLocaleString() : '');
const runLink = (id) => `<a href="/runs/${encodeURIComponent(id)}" data-run="${esc(id)}">${esc(id)}</a>`;

async function api(path, init) {
  const res = await fetch(`/api${path}`, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

// Live updates: /api/stream (Server-Sent Events) names each run that changed, and the page shown
// re-renders when it concerns it. Only while the stream is not connected (not yet, or lost: the browser
// reconnects by itself) does the page poll, every 2 s.
let current = null; // { render, runId }: the page shown, and its run (null: every run matters)
let streamOpen = false;
let rerenderTimer = null;

async function refresh() {
  if (!current) return;
  const { render } = current;
  try {
    await render();
    live.classList.remove('stale');
  } catch (err) {
    live.classList.add('stale');
    console.error(err);
  }
}

function poll() {
  clearTimeout(timer);
  if (streamOpen || !current) return;
  timer = setTimeout(async () => {
    await refresh();
    poll();
  }, 2000);
}

function connectStream() {
  if (typeof EventSource !== 'function') return;
  const source = new EventSource('/api/stream');
  source.onopen = () => {
    streamOpen = true;
    clearTimeout(timer);
    live.dataset.mode = 'stream';
    live.title = 'live: updates as runs change';
    void refresh(); // what changed while the stream was down
  };
  source.onerror = () => {
    streamOpen = false;
    live.dataset.mode = 'polling';
    live.title = 'live stream lost: refreshing every 2 s';
    poll();
  };
  source.addEventListener('run', (ev) => {
    const change = JSON.parse(ev.data);
    if (!current || (current.runId && change.id !== current.runId && change.parentRunId !== current.runId)) return;
    clearTimeout(rerenderTimer);
    rerenderTimer = setTimeout(refresh, 100);
  });
}

function schedule(render, runId = null) {
  current = { render, runId };
  poll();
}

// ---------- runs list ----------
/** How long a run took, or has been going (`now` for an unfinished one). */
function duration(r) {
  const ms = new Date(r.finishedAt ?? Date.now()).getTime() - new Date(r.createdAt).getTime();
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 3_600_000 ? `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s` : `${(ms / 3_600_000).toFixed(1)} h`;
}

async function listPage() {
  const params = new URLSearchParams(location.search);
  const status = params.get('status') || '';
  const workflow = params.get('workflow') || '';
  const q = params.get('q') || '';
  const { workflows } = await api('/workflows');
  const names = [...new Set(workflows.map((w) => w.name))];
  const link = (patch) => {
    const next = new URLSearchParams({ status, workflow, q, ...patch });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    return `/${next.size ? `?${next}` : ''}`;
  };
  // The frame (filters, search, start form) is drawn once; only the table follows the runs.
  app.innerHTML = `<h1>Runs</h1><div class="filters">${['', ...STATUSES].map((s) => `<button data-filter="${s}" class="${s === status ? 'on' : ''}">${s || 'all'}</button>`).join('')}
      <select id="workflow-filter" aria-label="workflow"><option value="">every workflow</option>${names.map((n) => `<option value="${esc(n)}"${n === workflow ? ' selected' : ''}>${esc(n)}</option>`).join('')}</select>
      <input id="search" type="search" placeholder="search id or subject" value="${esc(q)}" aria-label="search"></div>
    <div id="start-box"></div><div id="runs-box"></div>`;
  for (const b of app.querySelectorAll('[data-filter]')) b.onclick = () => navigate(link({ status: b.dataset.filter }));
  document.getElementById('workflow-filter').onchange = (ev) => navigate(link({ workflow: ev.target.value }));
  const search = document.getElementById('search');
  let typed = null;
  search.oninput = () => {
    clearTimeout(typed);
    typed = setTimeout(() => {
      history.replaceState(null, '', link({ q: search.value }));
      void refresh();
    }, 200);
  };
  startForm(document.getElementById('start-box'), workflows.filter((w, i) => workflows.findIndex((x) => x.name === w.name) === i), (id) => navigate(`/runs/${encodeURIComponent(id)}`));
  const box = document.getElementById('runs-box');
  const render = async () => {
    const { runs } = await api(`/runs?limit=200${status ? `&status=${status}` : ''}${workflow ? `&workflow=${encodeURIComponent(workflow)}` : ''}`);
    const needle = search.value.trim().toLowerCase();
    const shown = needle ? runs.filter((r) => r.id.toLowerCase().includes(needle) || (r.subject ?? '').toLowerCase().includes(needle)) : runs;
    const empty = runs.length
      ? '<p class="muted">No run matches.</p>'
      : '<p class="muted" id="empty-hint">No runs yet. Start one with "Start a run" above, with <code>rmapp start &lt;workflow&gt; \'{…}\'</code>, or watch the GitHub bot work with <code>rmapp demo</code>.</p>';
    box.innerHTML = `<table id="runs"><thead><tr><th>Run</th><th>Subject</th><th>Workflow</th><th>Status</th><th>State</th><th>Error</th><th>Duration</th><th>Updated</th></tr></thead><tbody>
      ${shown.map((r) => `<tr data-id="${esc(r.id)}"><td>${runLink(r.id)}</td><td>${esc(r.subject ?? '')}</td><td>${esc(r.workflow)}</td><td>${badge(r.status)}</td><td><code>${esc(stateText(r.state))}</code>${r.status === 'waiting' && r.wakeAt ? `<div class="muted">wakes ${when(r.wakeAt)}</div>` : ''}</td>
        <td class="error">${r.error ? `<code>${esc(r.error.category)}</code> ${esc(r.error.message)}` : ''}</td><td class="duration">${duration(r)}</td><td>${when(r.updatedAt)}</td></tr>`).join('')}
      </tbody></table>${shown.length ? '' : empty}`;
  };
  schedule(render); // before the first render: a change during it re-renders
  await render();
}

// ---------- statechart ----------
const PAD = 12;
const TITLE = 22;
const GAP_X = 46;
const GAP_Y = 16;

function measure(node) {
  if (!node.states.length) {
    const text = Math.max(node.key.length, ...node.invoke.map((i) => i.length + 2));
    node.w = Math.max(96, text * 7 + 24);
    node.h = node.invoke.length ? 46 : 34;
    return;
  }
  for (const c of node.states) measure(c);
  // Columns by breadth-first distance from the initial state over sibling transitions.
  const byId = new Map(node.states.map((c) => [c.id, c]));
  const sibling = (id) => node.states.find((c) => id === c.id || id.startsWith(`${c.id}.`));
  const layer = new Map();
  const start = node.states.find((c) => c.key === node.initial) || node.states[0];
  const queue = [start];
  layer.set(start.id, 0);
  while (queue.length) {
    const c = queue.shift();
    for (const t of allTransitions(c)) {
      for (const target of t.targets) {
        const s = sibling(target);
        if (s && !layer.has(s.id)) {
          layer.set(s.id, layer.get(c.id) + 1);
          queue.push(s);
        }
      }
    }
  }
  let max = Math.max(...layer.values());
  for (const c of node.states) if (!layer.has(c.id)) layer.set(c.id, ++max);
  // Final failure states go under the last column rather than to its right.
  const columns = [];
  for (const c of node.states) {
    let l = layer.get(c.id);
    if (c.type === 'final' && c.key === 'failed' && l > 0) l = Math.max(0, l - 1);
    c.layer = l;
    (columns[l] ||= []).push(c);
  }
  node.columns = columns.filter(Boolean);
  let x = PAD;
  let height = 0;
  for (const col of node.columns) {
    const w = Math.max(...col.map((c) => c.w));
    let y = TITLE + PAD;
    for (const c of col) {
      c.rx = x + (w - c.w) / 2;
      c.ry = y;
      y += c.h + GAP_Y;
    }
    height = Math.max(height, y);
    x += w + GAP_X;
  }
  node.w = Math.max(x - GAP_X + PAD, node.key.length * 7 + 24);
  node.h = height - GAP_Y + PAD;
  node.byId = byId;
}

function allTransitions(node) {
  return [...node.transitions, ...node.states.flatMap(allTransitions)];
}

function place(node, x, y) {
  node.x = x;
  node.y = y;
  for (const c of node.states) place(c, x + c.rx, y + c.ry);
}

function drawChart(chart, marks) {
  measure(chart);
  place(chart, 0, 0);
  const parts = [];
  const edges = [];
  const index = new Map();
  const collect = (n) => {
    index.set(n.id, n);
    n.states.forEach(collect);
  };
  collect(chart);
  const draw = (n) => {
    const cls = ['st', n.states.length ? 'compound' : 'atomic', marks.failed.has(n.id) ? 'failed' : marks.current.has(n.id) ? 'current' : marks.done.has(n.id) ? 'done' : '']
      .filter(Boolean)
      .join(' ');
    parts.push(`<g class="${cls}" data-state="${esc(n.id)}"><rect x="${n.x}" y="${n.y}" width="${n.w}" height="${n.h}" rx="8"></rect>
      <text x="${n.x + 10}" y="${n.y + (n.states.length ? 16 : 20)}">${n.type === 'final' ? '◉ ' : ''}${esc(n.key)}</text>
      ${n.invoke.length && !n.states.length ? `<text class="inv" x="${n.x + 10}" y="${n.y + 36}">⚙ ${esc(n.invoke.join(', '))}</text>` : ''}</g>`);
    for (const t of n.transitions) {
      for (const target of t.targets) {
        const to = index.get(target);
        if (to && to !== n) edges.push({ from: n, to, label: t.label, guarded: t.guarded });
      }
    }
    n.states.forEach(draw);
    const first = n.states.find((c) => c.key === n.initial);
    if (first) {
      // The initial marker: a dot with an arrow into the initial child, as in statechart notation.
      const y = first.y + Math.min(first.h / 2, 17);
      parts.push(`<g class="initial-marker" data-initial="${esc(first.id)}"><circle class="initial" cx="${first.x - 16}" cy="${y}" r="4"></circle><path class="edge" d="M${first.x - 12},${y} L${first.x - 1},${y}" marker-end="url(#arrow)"></path></g>`);
    }
  };
  draw(chart);
  const seen = new Set();
  for (const e of edges) {
    const key = `${e.from.id}>${e.to.id}`;
    const toFailure = e.to.key === 'failed';
    const forward = e.to.x > e.from.x + e.from.w / 2;
    let d;
    let lx;
    let ly;
    if (toFailure) {
      const x1 = e.from.x + e.from.w / 2;
      const y1 = e.from.y + e.from.h;
      const x2 = e.to.x + e.to.w / 2;
      const y2 = e.to.y;
      d = `M${x1},${y1} C${x1},${y1 + 30} ${x2},${y2 - 30} ${x2},${y2}`;
      lx = null;
    } else if (forward) {
      const x1 = e.from.x + e.from.w;
      const y1 = e.from.y + Math.min(e.from.h / 2, 20);
      const x2 = e.to.x;
      const y2 = e.to.y + Math.min(e.to.h / 2, 20);
      d = `M${x1},${y1} C${x1 + 24},${y1} ${x2 - 24},${y2} ${x2},${y2}`;
      lx = (x1 + x2) / 2;
      ly = (y1 + y2) / 2 - 4;
    } else {
      const x1 = e.from.x + e.from.w / 2;
      const y1 = e.from.y;
      const x2 = e.to.x + e.to.w / 2;
      const y2 = e.to.y;
      const top = Math.min(y1, y2) - 18;
      d = `M${x1},${y1} C${x1},${top} ${x2},${top} ${x2},${y2}`;
      lx = (x1 + x2) / 2;
      ly = top + 2;
    }
    const kind = e.label.startsWith('after ') ? 'after' : e.label === 'always' ? 'always' : /^(done|error): /.test(e.label) ? 'outcome' : 'event';
    parts.push(`<path class="edge ${kind}${toFailure ? ' fail' : ''}${e.guarded ? ' guarded' : ''}" data-label="${esc(e.label)}" d="${d}" marker-end="url(#arrow)"${toFailure ? ' stroke-dasharray="3 3" opacity=".5"' : ''}></path>`);
    if (lx !== null && !seen.has(key)) parts.push(`<text class="edge ${kind}" x="${lx}" y="${ly}" text-anchor="middle">${esc(e.label)}${e.guarded ? ' [guard]' : ''}</text>`);
    seen.add(key);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${chart.w + 20}" height="${chart.h + 40}" viewBox="-10 -24 ${chart.w + 20} ${chart.h + 40}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>
    <g id="viewport">${parts.join('\n')}</g></svg>`;
}

/** State ids of a state value: `{ a: 'b' }` under root `m` → m.a, m.a.b. */
function idsOf(rootId, value, out = new Set()) {
  if (typeof value === 'string') out.add(`${rootId}.${value}`);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(`${rootId}.${k}`);
      idsOf(`${rootId}.${k}`, v, out);
    }
  }
  return out;
}

function marksOf(chart, run, history) {
  const current = idsOf(chart.id, run.state);
  const entered = history.filter((h) => h.type === 'state.entered' && h.path === '');
  const done = new Set();
  for (const h of entered) for (const id of idsOf(chart.id, h.state)) if (!current.has(id)) done.add(id);
  const failed = new Set();
  if (run.status === 'failed') {
    for (const id of current) failed.add(id);
    // A machine that moved to a final failure state failed in the state before it; one that failed
    // where it stood (a step out of retries, a throwing action) failed in its current state only.
    const finals = new Set();
    const collect = (n) => {
      if (n.type === 'final') finals.add(n.id);
      n.states.forEach(collect);
    };
    collect(chart);
    const before = entered.at(-2);
    if (before && [...current].some((id) => finals.has(id))) for (const id of idsOf(chart.id, before.state)) failed.add(id);
  }
  return { current, done, failed };
}

// ---------- run page ----------
/** Zoom and pan of the chart (wheel, drag, buttons), kept across re-renders of one run's page. */
function zoomable(box, view) {
  const svg = box.querySelector('svg');
  const port = box.querySelector('#viewport');
  if (!svg || !port) return;
  const apply = () => port.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.k})`);
  apply();
  const zoom = (factor) => {
    view.k = Math.min(4, Math.max(0.25, view.k * factor));
    apply();
  };
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15);
  }, { passive: false });
  let drag = null;
  svg.addEventListener('pointerdown', (ev) => (drag = { x: ev.clientX - view.x, y: ev.clientY - view.y }));
  svg.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    view.x = ev.clientX - drag.x;
    view.y = ev.clientY - drag.y;
    apply();
  });
  for (const end of ['pointerup', 'pointerleave']) svg.addEventListener(end, () => (drag = null));
  box.querySelector('[data-zoom="in"]').onclick = () => zoom(1.25);
  box.querySelector('[data-zoom="out"]').onclick = () => zoom(0.8);
  box.querySelector('[data-zoom="reset"]').onclick = () => {
    Object.assign(view, { k: 1, x: 0, y: 0 });
    apply();
  };
}

async function runPage(id) {
  const view = { k: 1, x: 0, y: 0 };
  app.innerHTML = '<div id="run-head"></div><div id="event-box"></div><div id="run-body"></div>';
  const head = document.getElementById('run-head');
  const eventBox = document.getElementById('event-box');
  const bodyBox = document.getElementById('run-body');
  const render = async () => {
    const { run, history, artifacts, childRuns, chart, layout } = await api(`/runs/${encodeURIComponent(id)}`);
    const steps = history.filter((h) => h.type.startsWith('step.'));
    const progress = history.filter((h) => h.type === 'progress');
    const finished = ['succeeded', 'failed', 'cancelled'].includes(run.status);
    head.innerHTML = `
      <p><a href="/">← runs</a></p>
      <h1 id="run-title">${esc(run.id)} ${badge(run.status)}</h1>
      <p class="muted">${esc(run.workflow)}@${esc(run.workflowVersion)} · state <code id="run-state">${esc(stateText(run.state))}</code> · started ${when(run.createdAt)}${run.finishedAt ? ` · finished ${when(run.finishedAt)}` : ''}</p>
      ${run.statusMessage ? `<p class="muted">${esc(run.statusMessage)}</p>` : ''}
      ${run.error ? `<p class="error" id="run-error"><code>${esc(run.error.category)}</code> <code>${esc(run.error.code)}</code> ${esc(run.error.message)}</p>` : ''}
      <div class="actions"><button id="cancel" ${finished ? 'disabled' : ''}>Cancel</button><button id="retry" ${run.status === 'failed' ? '' : 'disabled'}>Retry</button><span id="action-result" class="muted"></span></div>`;
    eventForm(eventBox, id, finished || !chart ? [] : acceptedEvents(chart, idsOf(chart.id, run.state)), () => void refresh());
    bodyBox.innerHTML = `
      <section><h2>Statechart</h2><div class="chart-tools">zoom <button data-zoom="in">+</button><button data-zoom="out">−</button><button data-zoom="reset">reset</button> · drag to pan · edges: events, after, always, done/error; [guard] when guarded</div><div class="legend"><span class="s-running">■ current</span><span class="s-succeeded">■ done</span><span class="s-failed">■ failed</span></div>
        <div class="chart" id="chart">${chart ? (layout ? drawLaidOut(chart, layout, marksOf(chart, run, history)) : drawChart(chart, marksOf(chart, run, history))) : '<p class="muted">This version is not registered in this deploy.</p>'}</div></section>
      ${timeline(run, history)}
      <div class="grid"><div>
        <section><h2>Attempts and errors</h2><table><thead><tr><th>Step</th><th>Attempt</th><th>Event</th><th>Error</th></tr></thead><tbody>
          ${steps.map((h) => `<tr><td>${esc(h.step ?? '')}</td><td>${h.attempt ?? ''}</td><td>${esc(h.type)}</td><td class="error">${h.data?.error ? `<code>${esc(h.data.error.category)}</code> ${esc(h.data.error.message)}` : ''}</td></tr>`).join('')}
        </tbody></table></section>
        <section><h2>Input and output</h2><pre>${esc(JSON.stringify({ input: run.input, output: run.output }, null, 2))}</pre></section>
      </div><div>
        <section><h2>Progress</h2>${progress.length ? `<ul>${progress.map((h) => `<li>${esc(h.data?.message ?? JSON.stringify(h.data))}</li>`).join('')}</ul>` : '<p class="muted">No progress messages.</p>'}</section>
        <section><h2>Artifacts</h2>${artifacts.length ? `<ul>${artifacts.map((a) => `<li><a href="#" data-artifact="${esc(a.name)}">${esc(a.name)}</a> <span class="muted">${a.bytes} bytes</span></li>`).join('')}</ul><pre id="artifact" hidden></pre>` : '<p class="muted">None.</p>'}</section>
        <section><h2>Children</h2>${run.children.length || childRuns.length ? `<ul>${run.children.map((c) => `<li><code>${esc(c.path)}</code> ${esc(c.src)} — ${esc(c.status)}${c.state !== undefined ? ` at <code>${esc(stateText(c.state))}</code>` : ''}</li>`).join('')}${childRuns.map((c) => `<li>${runLink(c.id)} ${badge(c.status)}</li>`).join('')}</ul>` : '<p class="muted">None.</p>'}</section>
        <section><h2>History</h2><table id="history"><tbody>${history.map((h) => `<tr><td>${h.seq}</td><td>${esc(h.type)}</td><td>${h.path ? `<code>${esc(h.path)}</code> ` : ''}${h.state !== null && h.state !== undefined ? `<code>${esc(stateText(h.state))}</code>` : ''}${h.step ? ` ${esc(h.step)}#${h.attempt}` : ''}</td><td class="muted">${when(h.at)}</td></tr>`).join('')}</tbody></table></section>
      </div></div>`;
    const act = async (what) => {
      try {
        const result = await api(`/runs/${encodeURIComponent(id)}/${what}`, { method: 'POST', headers: { 'x-rmapp-request': '1' } });
        document.getElementById('action-result').textContent = result.message ?? '';
        await render();
        document.getElementById('action-result').textContent = result.message ?? '';
      } catch (err) {
        document.getElementById('action-result').textContent = err.message;
      }
    };
    zoomable(document.getElementById('chart').parentElement, view);
    document.getElementById('cancel').onclick = () => act('cancel');
    document.getElementById('retry').onclick = () => act('retry');
    for (const a of app.querySelectorAll('[data-artifact]')) {
      a.onclick = async (ev) => {
        ev.preventDefault();
        const { value } = await api(`/runs/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(a.dataset.artifact)}`);
        const pre = document.getElementById('artifact');
        pre.hidden = false;
        pre.textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
      };
    }
  };
  schedule(render, id); // before the first render: a change during it re-renders
  await render();
}

// ---------- routing ----------
function navigate(path) {
  history.pushState(null, '', path);
  connectStream();
route();
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-run]');
  if (!a || ev.metaKey || ev.ctrlKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);

function route() {
  clearTimeout(timer);
  current = null;
  const m = /^\/runs\/(.+)$/.exec(location.pathname);
  (m ? runPage(decodeURIComponent(m[1])) : listPage()).catch((err) => {
    app.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  });
}
connectStream();
route();
