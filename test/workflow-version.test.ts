/**
 * A definition's default version (`machineVersion`) is what keeps a run in flight on the machine it
 * started with across a deploy. A child machine's snapshot lives inside its parent's, so a change to
 * the child alone — invoked by name from `setup({ actors })`, inline, or spawned — must give the
 * parent a new version; a machine without child machines keeps the hash it had before children were
 * covered (runs in flight everywhere carry it).
 */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { assign, createMachine, fromPromise, setup, spawnChild, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, machineVersion } from '../src/index.ts';

const work = fromPromise(async () => 'done');

/** A child with one state more in `extra`. */
function child(extra: boolean) {
  return setup({ actors: { work } }).createMachine({
    id: 'child',
    initial: 'working',
    states: {
      working: { invoke: { src: 'work', onDone: extra ? 'checking' : 'done' } },
      ...(extra ? { checking: { always: 'done' } } : {}),
      done: { type: 'final' },
    },
  });
}

const byName = (c: AnyStateMachine) =>
  setup({ actors: { child: c } }).createMachine({
    id: 'parent',
    initial: 'running',
    states: { running: { invoke: { src: 'child', onDone: 'done' } }, done: { type: 'final' } },
  });

const inline = (c: AnyStateMachine) =>
  createMachine({
    id: 'parent',
    initial: 'running',
    states: { running: { invoke: { src: c, onDone: 'done' } }, done: { type: 'final' } },
  });

const spawned = (c: AnyStateMachine) =>
  setup({ actors: { child: c } }).createMachine({
    id: 'parent',
    initial: 'running',
    states: { running: { entry: spawnChild('child', { id: 'c' }), on: { finish: 'done' } }, done: { type: 'final' } },
  });

it('a child machine changed alone gives its parent a new version, however the parent starts it', () => {
  for (const [how, parent] of [
    ['invoked by name', byName],
    ['invoked inline', inline],
    ['spawned by name', spawned],
  ] as const) {
    expect(machineVersion(parent(child(true))), how).not.toBe(machineVersion(parent(child(false))));
    expect(machineVersion(parent(child(false))), `${how}: the same structure twice`).toBe(machineVersion(parent(child(false))));
  }
  // A grandchild counts too.
  expect(machineVersion(byName(byName(child(true))))).not.toBe(machineVersion(byName(byName(child(false)))));
  // The workflow's default version is that hash.
  expect(defineWorkflow({ name: 'p', machine: byName(child(true)), input: z.object({}) }).version).toBe(
    machineVersion(byName(child(true))),
  );
});

it('a machine without child machines hashes as before: its definition alone', () => {
  const machine = setup({ actors: { work }, actions: { note: assign({}) } }).createMachine({
    id: 'plain',
    initial: 'a',
    states: { a: { invoke: { src: 'work', onDone: { target: 'b', actions: 'note' } } }, b: { after: { 1000: 'c' } }, c: { type: 'final' } },
  });
  const before = createHash('sha256')
    .update(
      JSON.stringify(machine.root.definition, (_k, v: unknown) =>
        typeof v === 'function' ? `fn:${(v as { name?: string }).name ?? ''}` : v,
      ),
    )
    .digest('hex')
    .slice(0, 12);
  expect(machineVersion(machine)).toBe(before);
});

it('a machine that can start itself is hashed without looping', () => {
  const self: AnyStateMachine = setup({}).createMachine({ id: 'self', initial: 'a', states: { a: {} } });
  // Provide itself as its own child after the fact (as a recursive definition would).
  const recursive = self.provide({ actors: { again: self } });
  (recursive.implementations.actors as Record<string, unknown>).again = recursive;
  expect(machineVersion(recursive)).toMatch(/^[0-9a-f]{12}$/);
});

it('deep nesting hashes each machine once: a chain and a diamond 40 levels deep, the leaf still counted', () => {
  const nest = (leaf: AnyStateMachine, twoNames: boolean) => {
    let m = leaf;
    for (let i = 0; i < 40; i++) {
      const inner = m;
      const actors: Record<string, AnyStateMachine> = twoNames ? { a: inner, b: inner } : { a: inner };
      m = setup({ actors }).createMachine({
        id: `level${i}`,
        initial: 'on',
        states: { on: { invoke: { src: 'a' } } },
      });
    }
    return m;
  };
  // Each level's text once held its child's whole, escaped again: 2^levels (11 s at 20, a RangeError at 21).
  for (const twoNames of [false, true]) {
    expect(machineVersion(nest(child(true), twoNames)), twoNames ? 'diamond' : 'chain').not.toBe(
      machineVersion(nest(child(false), twoNames)),
    );
  }
});
