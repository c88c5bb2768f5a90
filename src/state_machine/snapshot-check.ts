/**
 * Checks that a persisted snapshot can be restored into today's machine before handing it to XState,
 * which otherwise errors on a missing state and silently drops a child whose `src` was renamed,
 * leaving the parent waiting forever (docs/xstate-semantics.md).
 */
import type { AnyStateMachine } from 'xstate';

interface StateNodeLike {
  states: Record<string, StateNodeLike>;
  id: string;
}

interface PersistedChild {
  src?: unknown;
  snapshot?: unknown;
}

const INLINE_SRC = /^xstate\.invoke\.\d+\.(.*)$/;

function checkValue(node: StateNodeLike, value: unknown, where: string): string | null {
  if (typeof value === 'string') {
    return node.states[value] ? null : `state "${where}${value}" does not exist in the machine`;
  }
  if (value && typeof value === 'object') {
    for (const [key, sub] of Object.entries(value as Record<string, unknown>)) {
      const child = node.states[key];
      if (!child) return `state "${where}${key}" does not exist in the machine`;
      const problem = checkValue(child, sub, `${where}${key}.`);
      if (problem) return problem;
    }
    return null;
  }
  return `state value ${JSON.stringify(value)} is not a state`;
}

/** Returns what makes `snapshot` unrestorable into `machine`, or null when it is fine. */
export function findRestoreProblem(machine: AnyStateMachine, snapshot: unknown, where = 'root'): string | null {
  if (!snapshot || typeof snapshot !== 'object') return `${where}: snapshot is not an object`;
  const s = snapshot as { status?: unknown; value?: unknown; children?: unknown };
  if (!['active', 'done', 'error', 'stopped'].includes(String(s.status))) {
    return `${where}: snapshot status ${JSON.stringify(s.status)} is not an XState status`;
  }
  const valueProblem = checkValue(machine.root as unknown as StateNodeLike, s.value, '');
  if (valueProblem) return `${where}: ${valueProblem}`;
  const children = (s.children ?? {}) as Record<string, PersistedChild>;
  if (typeof children !== 'object') return `${where}: children is not an object`;
  const actors = (machine.implementations.actors ?? {}) as Record<string, unknown>;
  for (const [id, child] of Object.entries(children)) {
    if (typeof child?.src !== 'string') {
      return `${where}: child "${id}" has no actor name (inline spawned actors cannot be persisted; use setup({ actors }))`;
    }
    const inline = INLINE_SRC.exec(child.src);
    const logic = inline ? (stateExists(machine, inline[1] as string) ? 'inline' : undefined) : actors[child.src];
    if (!logic) return `${where}: child "${id}" uses actor "${child.src}", which the machine no longer provides`;
    if (typeof logic === 'object' && logic && 'root' in logic && child.snapshot) {
      const problem = findRestoreProblem(logic as AnyStateMachine, child.snapshot, `${where}/${id}`);
      if (problem) return problem;
    }
  }
  return null;
}

function stateExists(machine: AnyStateMachine, id: string): boolean {
  try {
    return !!machine.getStateNodeById(id);
  } catch {
    return false;
  }
}
