// The statechart as the server laid it out with ELK (GET /api/runs/:id `layout`, chart-layout.ts):
// boxes at their places, edges along their routes with their labels where ELK put them (clear of the
// boxes), each edge classed by kind (event, after, always, outcome; guarded), and the initial marker
// of every compound state. Current, done and failed states are marked from the run.
import { esc } from '/html.js';

export function drawLaidOut(chart, layout, marks) {
  const nodes = new Map();
  const collect = (n) => {
    nodes.set(n.id, n);
    n.states.forEach(collect);
  };
  collect(chart);
  const boxes = new Map(layout.states.map((s) => [s.id, s]));
  const parts = [];
  // Parents first, so children are drawn over them.
  for (const s of layout.states) {
    const n = nodes.get(s.id);
    if (!n) continue;
    const mark = marks.failed.has(n.id) ? 'failed' : marks.current.has(n.id) ? 'current' : marks.done.has(n.id) ? 'done' : '';
    const cls = ['st', n.states.length ? 'compound' : 'atomic', mark].filter(Boolean).join(' ');
    parts.push(`<g class="${cls}" data-state="${esc(n.id)}"><rect x="${s.x}" y="${s.y}" width="${s.w}" height="${s.h}" rx="8"></rect>
      <text x="${s.x + 10}" y="${s.y + (n.states.length ? 18 : 20)}">${n.type === 'final' ? '◉ ' : ''}${esc(n.key)}</text>
      ${n.invoke.length && !n.states.length ? `<text class="inv" x="${s.x + 10}" y="${s.y + 36}">⚙ ${esc(n.invoke.join(', '))}</text>` : ''}</g>`);
    const first = n.states.find((c) => c.key === n.initial);
    const box = first && boxes.get(first.id);
    if (box) {
      const y = box.y + Math.min(box.h / 2, 17);
      parts.push(
        `<g class="initial-marker" data-initial="${esc(first.id)}"><circle class="initial" cx="${box.x - 18}" cy="${y}" r="4"></circle><path class="edge" d="M${box.x - 14},${y} L${box.x - 1},${y}" marker-end="url(#arrow)"></path></g>`,
      );
    }
  }
  for (const e of layout.edges) {
    if (e.points.length < 2) continue;
    const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
    const fail = nodes.get(e.target)?.key === 'failed';
    parts.push(
      `<path class="edge ${e.kind}${e.guarded ? ' guarded' : ''}${fail ? ' fail' : ''}" data-label="${esc(e.label)}" d="${d}" marker-end="url(#arrow)"></path>`,
    );
    if (e.labelAt) {
      parts.push(
        `<text class="edge ${e.kind}" x="${e.labelAt.x + e.labelAt.w / 2}" y="${e.labelAt.y + e.labelAt.h - 3}" text-anchor="middle">${esc(e.label)}${e.guarded ? ' [guard]' : ''}</text>`,
      );
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>
    <g id="viewport">${parts.join('\n')}</g></svg>`;
}
