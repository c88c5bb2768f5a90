/**
 * Lays a workflow's statechart out with ELK (elkjs, the Eclipse Layout Kernel that Stately's tools
 * use): layered, left to right, nested states inside their parents, edges routed around the boxes and
 * their labels placed where they overlap nothing. The dashboard draws the result as it is (the run
 * page's statechart); the layout of a definition is computed once per process.
 */
import elkModule from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { ChartNode } from '../../state_machine/chart.ts';

/** A box of the laid-out chart, in absolute coordinates. */
export interface LaidOutState {
  id: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** An edge: its label, kind, the polyline it follows and where its label goes (absolute coordinates). */
export interface LaidOutEdge {
  source: string;
  target: string;
  label: string;
  kind: 'event' | 'after' | 'always' | 'outcome';
  guarded: boolean;
  points: { x: number; y: number }[];
  labelAt: { x: number; y: number; w: number; h: number } | null;
}

export interface ChartLayout {
  width: number;
  height: number;
  states: LaidOutState[];
  edges: LaidOutEdge[];
}

const CHAR_W = 7;
const LABEL_CHAR_W = 6;
// A CommonJS module: under Node's ESM its `module.exports` (holding the class as `default`) is the default import.
const ELK = (elkModule as unknown as { default: new () => { layout(graph: ElkNode): Promise<ElkNode> } }).default;
const elk = new ELK();
const cache = new Map<string, Promise<ChartLayout>>();

const kindOf = (label: string): LaidOutEdge['kind'] =>
  label.startsWith('after ') ? 'after' : label === 'always' ? 'always' : /^(done|error): /.test(label) ? 'outcome' : 'event';

/** The layout of `chart`, computed once per `key` (a definition's name and version). */
export function chartLayout(key: string, chart: ChartNode): Promise<ChartLayout> {
  let layout = cache.get(key);
  if (!layout) {
    layout = layOut(chart);
    cache.set(key, layout);
    layout.catch(() => cache.delete(key));
  }
  return layout;
}

async function layOut(chart: ChartNode): Promise<ChartLayout> {
  const edges: (ElkExtendedEdge & { meta: Omit<LaidOutEdge, 'points' | 'labelAt'> })[] = [];
  const ids = new Set<string>();
  const collect = (n: ChartNode) => {
    ids.add(n.id);
    n.states.forEach(collect);
  };
  collect(chart);
  const toElk = (n: ChartNode): ElkNode => {
    for (const t of n.transitions) {
      for (const target of t.targets) {
        if (!ids.has(target)) continue;
        const text = `${t.label}${t.guarded ? ' [guard]' : ''}`;
        edges.push({
          id: `e${edges.length}`,
          sources: [n.id],
          targets: [target],
          labels: [{ text, width: text.length * LABEL_CHAR_W + 6, height: 14 }],
          meta: { source: n.id, target, label: t.label, kind: kindOf(t.label), guarded: t.guarded },
        });
      }
    }
    if (!n.states.length) {
      const text = Math.max(n.key.length + 2, ...n.invoke.map((i) => i.length + 2));
      return { id: n.id, width: Math.max(96, text * CHAR_W + 24), height: n.invoke.length ? 46 : 34 };
    }
    return {
      id: n.id,
      layoutOptions: { 'elk.padding': `[top=${n.key.length ? 30 : 12},left=28,bottom=14,right=14]` },
      children: n.states.map(toElk),
    };
  };
  const root = toElk(chart);
  const graph: ElkNode = {
    id: '__root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '48',
      'elk.spacing.nodeNode': '22',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.layered.edgeLabels.sideSelection': 'ALWAYS_UP',
    },
    children: [root],
    edges: edges.map(({ meta: _meta, ...e }) => e),
  };
  const out = await elk.layout(graph);
  // Coordinates are relative to the parent (nodes) or to the edge's container: made absolute here.
  const offset = new Map<string, { x: number; y: number }>([['__root', { x: 0, y: 0 }]]);
  const states: LaidOutState[] = [];
  const walk = (n: ElkNode, px: number, py: number) => {
    const x = px + (n.x ?? 0);
    const y = py + (n.y ?? 0);
    offset.set(n.id, { x, y });
    if (n.id !== '__root') states.push({ id: n.id, x, y, w: n.width ?? 0, h: n.height ?? 0 });
    for (const c of n.children ?? []) walk(c, x, y);
  };
  walk(out, 0, 0);
  const laidEdges: LaidOutEdge[] = [];
  const byId = new Map(edges.map((e) => [e.id, e.meta]));
  const visit = (n: ElkNode) => {
    for (const e of (n.edges ?? []) as ElkExtendedEdge[]) {
      const meta = byId.get(e.id);
      if (!meta) continue;
      const o = offset.get((e as { container?: string }).container ?? n.id) ?? { x: 0, y: 0 };
      const section = e.sections?.[0];
      const points = section
        ? [section.startPoint, ...(section.bendPoints ?? []), section.endPoint].map((p) => ({ x: p.x + o.x, y: p.y + o.y }))
        : [];
      const l = e.labels?.[0];
      laidEdges.push({
        ...meta,
        points,
        labelAt: l && l.x !== undefined ? { x: l.x + o.x, y: (l.y ?? 0) + o.y, w: l.width ?? 0, h: l.height ?? 0 } : null,
      });
    }
    for (const c of n.children ?? []) visit(c);
  };
  visit(out);
  return { width: out.width ?? 0, height: out.height ?? 0, states, edges: laidEdges };
}
