/**
 * A store whose statements (`query`, `script`) run `before(sql)` first: to fail them (a throw, or a
 * rejected promise) or to delay them (a promise), as a network partition or a slow server would — and,
 * when given, `after(sql)` once a statement was applied: a throw there loses its answer, as a
 * connection broken during COMMIT does (the statement committed; its caller cannot tell).
 * Everything else is the store's own.
 */
import type { Database } from '../../src/index.ts';

type Hook = (sql: string, params?: readonly unknown[]) => Promise<void> | void;

export function hookedStore(store: Database, before: Hook, after?: Hook): Database {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if ((prop === 'query' || prop === 'script') && typeof value === 'function') {
        return (...args: unknown[]) => {
          const sql = String(args[0]);
          const params = args[1] as readonly unknown[] | undefined;
          let waited: Promise<void> | void;
          try {
            waited = before(sql, params);
          } catch (err) {
            return Promise.reject(err);
          }
          const run = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          const ran = waited ? waited.then(run) : run();
          return after ? ran.then(async (result) => (await after(sql, params), result)) : ran;
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
