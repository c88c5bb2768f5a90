// The run page's statechart as boxes and edges (SVG), with the run's current, done and failed states
// marked, and zoom and pan. Laid out by ELK when it is available (chart.js), else by the simple
// nested layout below.
import { esc } from '/html.js';

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

export function drawChart(chart, marks) {
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
    const cls = [
      'st',
      n.states.length ? 'compound' : 'atomic',
      marks.failed.has(n.id) ? 'failed' : marks.current.has(n.id) ? 'current' : marks.done.has(n.id) ? 'done' : '',
    ]
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
      parts.push(
        `<g class="initial-marker" data-initial="${esc(first.id)}"><circle class="initial" cx="${first.x - 16}" cy="${y}" r="4"></circle><path class="edge" d="M${first.x - 12},${y} L${first.x - 1},${y}" marker-end="url(#arrow)"></path></g>`,
      );
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
    const kind = e.label.startsWith('after ')
      ? 'after'
      : e.label === 'always'
        ? 'always'
        : /^(done|error): /.test(e.label)
          ? 'outcome'
          : 'event';
    parts.push(
      `<path class="edge ${kind}${toFailure ? ' fail' : ''}${e.guarded ? ' guarded' : ''}" data-label="${esc(e.label)}" d="${d}" marker-end="url(#arrow)"${toFailure ? ' stroke-dasharray="3 3" opacity=".5"' : ''}></path>`,
    );
    if (lx !== null && !seen.has(key))
      parts.push(
        `<text class="edge ${kind}" x="${lx}" y="${ly}" text-anchor="middle">${esc(e.label)}${e.guarded ? ' [guard]' : ''}</text>`,
      );
    seen.add(key);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${chart.w + 20}" height="${chart.h + 40}" viewBox="-10 -24 ${chart.w + 20} ${chart.h + 40}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>
    <g id="viewport">${parts.join('\n')}</g></svg>`;
}

/** State ids of a state value: `{ a: 'b' }` under root `m` → m.a, m.a.b. */
export function idsOf(rootId, value, out = new Set()) {
  if (typeof value === 'string') out.add(`${rootId}.${value}`);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(`${rootId}.${k}`);
      idsOf(`${rootId}.${k}`, v, out);
    }
  }
  return out;
}

export function marksOf(chart, run, history) {
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
export function zoomable(box, view) {
  const svg = box.querySelector('svg');
  const port = box.querySelector('#viewport');
  if (!svg || !port) return;
  const apply = () => port.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.k})`);
  apply();
  const zoom = (factor) => {
    view.k = Math.min(4, Math.max(0.25, view.k * factor));
    apply();
  };
  svg.addEventListener(
    'wheel',
    (ev) => {
      ev.preventDefault();
      zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15);
    },
    { passive: false },
  );
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
