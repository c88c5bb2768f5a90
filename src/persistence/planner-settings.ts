/**
 * Planner settings of every connection (Postgres: startup options, postgres-store.ts `addPlannerOptions`; PGlite:
 * a `SET` once). No sequential scan where an index can serve: the hot statements are prepared (named,
 * and PL/pgSQL's inside `rmapp_commit_runs`), and Postgres keeps a prepared statement's generic plan
 * once it has planned it: a plan made while `rmapp_runs` was a page or two (a new database: a worker's
 * first minute, every benchmark) scans the table sequentially for the connection's life, until
 * autovacuum's ANALYZE invalidates it. Measured at concurrency 1 on a fresh database
 * (bench/cpu-per-workflow.ts, 1,000 workflows): 3,901 sequential scans of rmapp_runs reading 1.75 M
 * rows, Postgres CPU 4.83 ms per workflow; with the setting 8 scans (the migrations'), 3.63 ms. Every
 * query rmapp makes has an index path (bench/README.md, "scale": the EXPLAINs); a query with none still
 * runs, its sequential scan costed 10^10 higher — and with that cost Postgres up to 16 JIT-compiles
 * the query on every execution (~50–300 ms with LLVM inlining): migration 0011's trigger query on its
 * one-row table took 46 ms per inserted run, a 5,000-row insert 244 ms → 178 s. So JIT is off too;
 * rmapp's short queries never gain from it.
 */
export const PLANNER_SETTINGS = ['enable_seqscan=off', 'jit=off'];
