/**
 * A store whose statements (`query`, `script`) run `before(sql)` first: to fail them (a throw, or a
 * rejected promise) or to delay them (a promise), as a network partition or a slow server would.
 * Everything else is the store's own.
 */
import type { Database } from '../../src/index.ts';

export function hookedStore(store: Database, before: (sql: string, params?: readonly unknown[]) => Promise<void> | void): Database {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if ((prop === 'query' || prop === 'script') && typeof value === 'function') {
        return (...args: unknown[]) => {
          let waited: Promise<void> | void;
          try {
            waited = before(String(args[0]), args[1] as readonly unknown[] | undefined);
          } catch (err) {
            return Promise.reject(err);
          }
          const run = () => (value as (...a: unknown[]) => unknown).apply(target, args);
          return waited ? waited.then(run) : run();
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
