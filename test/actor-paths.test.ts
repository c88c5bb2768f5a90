/**
 * An actor's path is the chain of its ids from the run's root, each escaped, so that ids holding "/"
 * or "%" name one actor each; a path written before ids were escaped still finds its actor.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, setup } from 'xstate';
import { actorPath, childPath, findActor, pathSegment } from '../src/state_machine/actor-paths.ts';

const idle = fromPromise(() => new Promise<never>(() => {}));

function started() {
  const inner = setup({ actors: { idle } }).createMachine({
    invoke: [
      { id: 'b', src: 'idle' },
      { id: 'x%y', src: 'idle' },
    ],
  });
  const machine = setup({ actors: { idle, inner } }).createMachine({
    invoke: [
      { id: '', src: 'idle' },
      { id: 'a/b', src: 'idle' },
      { id: 'a', src: 'inner' },
      { id: 'c/d', src: 'inner' },
    ],
  });
  const root = createActor(machine).start();
  const children = root.getSnapshot().children as Record<string, ReturnType<typeof createActor>>;
  return { root, children };
}

describe('actor paths', () => {
  it('escapes only "/" and "%", and two different actors never share a path', () => {
    expect(pathSegment('step.1#2 :x')).toBe('step.1#2 :x');
    expect(pathSegment('a/b')).toBe('a%2Fb');
    expect(pathSegment('a%2Fb')).toBe('a%252Fb');
    expect(childPath('', 'a/b')).toBe('a%2Fb');
    expect(childPath('c%2Fd', 'b')).toBe('c%2Fd/b');
    // The empty id is a child, not the root ('').
    expect(pathSegment('')).toBe('%');
    expect(childPath('a', '')).toBe('a/%');

    const { root, children } = started();
    const inner = (id: string) => children[id]!.getSnapshot().children as Record<string, ReturnType<typeof createActor>>;
    const paths = {
      'a/b at the root': actorPath(children['a/b']!, root),
      'b in a': actorPath(inner('a')['b']!, root),
      'b in c/d': actorPath(inner('c/d')['b']!, root),
      'x%y in a': actorPath(inner('a')['x%y']!, root),
      'the empty id at the root': actorPath(children['']!, root),
    };
    expect(paths).toEqual({
      'a/b at the root': 'a%2Fb',
      'b in a': 'a/b',
      'b in c/d': 'c%2Fd/b',
      'x%y in a': 'a/x%25y',
      'the empty id at the root': '%',
    });
    for (const [name, path] of Object.entries(paths)) {
      expect(actorPath(findActor(root, path)!, root), `the actor found at the path of ${name}`).toBe(path);
    }
    root.stop();
  });

  it('finds the actor of a path written before ids were escaped, and nothing for an unknown one', () => {
    const { root, children } = started();
    expect(findActor(root, 'c/d/b'), 'b in c/d by its unescaped path').toBe(
      (children['c/d']!.getSnapshot().children as Record<string, unknown>)['b'],
    );
    expect(findActor(root, ''), 'the root').toBe(root);
    expect(findActor(root, 'a/zz'), 'a child that does not exist').toBeUndefined();
    expect(findActor(root, 'a%2Fzz'), 'an escaped id that does not exist').toBeUndefined();
    root.stop();
  });
});
