/**
 * Clean-up steps a test file registers as it creates things (databases, roles, connections, folders),
 * run after all its tests in reverse order; one that fails does not stop the others.
 */
import { afterAll } from 'vitest';

export function cleanupsAfterAll(): (() => Promise<unknown> | unknown)[] {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse())
      await Promise.resolve()
        .then(c)
        .catch(() => {});
  });
  return cleanups;
}
