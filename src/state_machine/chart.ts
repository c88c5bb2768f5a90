/**
 * A machine's structure as plain JSON for drawing: nested states, their invoked actors and their
 * transitions with readable labels (`done`/`error` of an invoke, `after 7d`, event types). The
 * dashboard draws it and marks the run's current, visited and failed states.
 */
import type { AnyStateMachine } from 'xstate';

export interface ChartTransition {
  /** Event type, or `done: <src>`, `error: <src>`, `after <delay>`, `always`. */
  label: string;
  /** Target state ids (empty: an internal transition). */
  targets: string[];
  guarded: boolean;
}

export interface ChartNode {
  /** Unique id, e.g. `issueImplementation.testing`. */
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  initial: string | null;
  invoke: string[];
  transitions: ChartTransition[];
  states: ChartNode[];
}

interface NodeLike {
  id: string;
  key: string;
  type: ChartNode['type'];
  initial?: { target?: { key: string }[] } | undefined;
  invoke: { id: string; src: unknown }[];
  transitions: Map<string, { eventType: string; target?: { id: string }[] | undefined; guard?: unknown; delay?: unknown }[]>;
  states: Record<string, NodeLike>;
}

function label(eventType: string, node: NodeLike, delay: unknown): string {
  const src = (id: string) => {
    const inv = node.invoke.find((i) => i.id === id);
    return typeof inv?.src === 'string' ? inv.src : id;
  };
  if (eventType.startsWith('xstate.done.actor.')) return `done: ${src(eventType.slice(18))}`;
  if (eventType.startsWith('xstate.error.actor.')) return `error: ${src(eventType.slice(19))}`;
  if (eventType.startsWith('xstate.after.'))
    return `after ${typeof delay === 'number' ? `${delay} ms` : String(delay ?? eventType.split('.')[2])}`;
  if (eventType === '') return 'always';
  return eventType;
}

function walk(node: NodeLike): ChartNode {
  const transitions: ChartTransition[] = [];
  for (const [eventType, list] of node.transitions) {
    for (const t of list)
      transitions.push({ label: label(eventType, node, t.delay), targets: (t.target ?? []).map((n) => n.id), guarded: !!t.guard });
  }
  return {
    id: node.id,
    key: node.key,
    type: node.type,
    initial: node.initial?.target?.[0]?.key ?? null,
    invoke: node.invoke.map((i) => (typeof i.src === 'string' ? i.src : i.id)),
    transitions,
    states: Object.values(node.states).map(walk),
  };
}

/** The chart of a machine. */
export function chartOf(machine: AnyStateMachine): ChartNode {
  return walk(machine.root as unknown as NodeLike);
}
