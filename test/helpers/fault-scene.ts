/**
 * What a fault test sets up — its database, the TCP proxy it breaks, and whatever else must be closed —
 * torn down after each test in one order: the closers in reverse (engines and stores before the
 * proxy they reach Postgres through), then the proxy, then the database. Four fault files kept the
 * same `afterEach` of their own.
 */
import { afterEach } from 'vitest';
import type { TestDatabase } from './postgres.ts';
import type { FaultProxy } from './pg-fault-proxy.ts';

export interface FaultScene {
  testDb: TestDatabase | undefined;
  proxy: FaultProxy | undefined;
  /** Run after the test, last pushed first; a failing one does not stop the others. */
  readonly closers: (() => Promise<unknown>)[];
}

/** A scene emptied after each test of the file that calls this at its top level. */
export function faultScene(): FaultScene {
  const scene: FaultScene = { testDb: undefined, proxy: undefined, closers: [] };
  afterEach(async () => {
    for (const close of scene.closers.splice(0).reverse()) await close().catch(() => {});
    await scene.proxy?.close();
    scene.proxy = undefined;
    await scene.testDb?.drop();
    scene.testDb = undefined;
  });
  return scene;
}
