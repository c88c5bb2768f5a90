/**
 * The dashboard's statechart layout (ELK, src/rmapp/server/chart-layout.ts) for every machine rmapp
 * registers: each state gets a box inside its parent's, each transition between states a route of at
 * least two points ending on its target's box, and no edge label covers a state's box.
 */
import { expect, it } from 'vitest';
import { chartOf, type ChartNode } from '../src/state_machine/chart.ts';
import { chartLayout, type LaidOutState } from '../src/rmapp/server/chart-layout.ts';
import { allMachines } from './helpers/all-machines.ts';

const overlaps = (a: { x: number; y: number; w: number; h: number }, b: LaidOutState) =>
  a.x < b.x + b.w && a.x + a.w > b.x && a.y < b.y + b.h && a.y + a.h > b.y;
const near = (v: number, lo: number, hi: number) => v >= lo - 1 && v <= hi + 1;

it.each(
  allMachines()
    .filter((m) => !m.sameAs)
    .map((m) => [m.def.name, m.def] as const),
)('%s', async (name, def) => {
  const chart = chartOf(def.machine);
  const layout = await chartLayout(`${name}@${def.version}`, chart);
  const boxes = new Map(layout.states.map((s) => [s.id, s]));
  const nodes: ChartNode[] = [];
  const collect = (n: ChartNode, parent: ChartNode | null) => {
    nodes.push(n);
    const box = boxes.get(n.id);
    expect(box, `box of ${n.id}`).toBeDefined();
    const outer = parent && boxes.get(parent.id);
    if (box && outer)
      expect(
        box.x >= outer.x && box.y >= outer.y && box.x + box.w <= outer.x + outer.w && box.y + box.h <= outer.y + outer.h,
        `${n.id} inside ${parent?.id}`,
      ).toBe(true);
    n.states.forEach((c) => collect(c, n));
  };
  collect(chart, null);
  const atomic = nodes.filter((n) => !n.states.length).map((n) => boxes.get(n.id) as LaidOutState);
  const expected = nodes.flatMap((n) =>
    n.transitions.flatMap((t) => t.targets.filter((target) => boxes.has(target)).map((target) => `${n.id} → ${target} ${t.label}`)),
  );
  expect(layout.edges.map((e) => `${e.source} → ${e.target} ${e.label}`).sort()).toEqual(expected.sort());
  for (const e of layout.edges) {
    const what = `${e.source} → ${e.target} (${e.label})`;
    expect(e.points.length, what).toBeGreaterThanOrEqual(2);
    const end = e.points.at(-1) as { x: number; y: number };
    const target = boxes.get(e.target) as LaidOutState;
    expect(near(end.x, target.x, target.x + target.w) && near(end.y, target.y, target.y + target.h), `${what} ends on its target`).toBe(
      true,
    );
    const label = e.labelAt;
    if (label) for (const s of atomic) expect(overlaps(label, s), `label of ${what} over ${s.id}`).toBe(false);
  }
});
