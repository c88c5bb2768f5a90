/**
 * The scale section of `npm run bench`: the hot and listing queries against a database that already
 * holds many finished runs and their history (`RMAPP_BENCH_SCALE_RUNS`, default 1,000,000, seven history
 * rows each, as a 6-step run leaves), seeded in SQL. Prints the time per claim with a backlog of 100
 * and of 100,000 due runs, the plans of the claim, the commit and the lists (no sequential scan and no
 * sort on disk expected), and throughput and WAL per workflow on that database next to an empty one.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { claimRuns } from '../src/persistence/claims.ts';
import { openDatabase } from '../src/persistence/database.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { RUN_STATUSES } from '../src/persistence/run-status.ts';
import { createDatabase, dropDatabase, readWriteCounters, walBytesBetween } from './measure.ts';
import { rmappThroughput } from './rmapp.ts';

const RUNS = Number(process.env.RMAPP_BENCH_SCALE_RUNS ?? 1_000_000);
const NAME = 'rmapp_bench_scale';

/** Seeds `runs` finished runs with seven history rows each, in batches (one statement each). */
async function seed(sql: postgres.Sql, runs: number): Promise<void> {
  const batch = 100_000;
  for (let done = 0; done < runs; done += batch) {
    const n = Math.min(batch, runs - done);
    await sql.unsafe(`
      with r as (
        insert into rmapp_runs (id, workflow, workflow_version, status, snapshot, state_value, input, output, version, lease_epoch, history_rows, created_at, updated_at, finished_at)
        select gen_random_uuid()::text, 'bench.six', 'seed', 'succeeded', '{"status":"done","value":"done","context":{}}'::jsonb, '"done"'::jsonb,
          '{}'::jsonb, '{}'::jsonb, 8, 1, 7, now() - interval '30 days' + (g * interval '1 ms'), now(), now()
        from generate_series(1, ${n}) g
        returning id)
      insert into rmapp_run_history (run_id, worker, lease_epoch, events)
      select r.id, 'seed', 1, jsonb_build_array(jsonb_build_object('type', 'step.succeeded', 'path', 'step' || k, 'attempt', 1))
      from r, generate_series(1, 7) k`);
  }
  await sql.unsafe('vacuum analyze rmapp_runs');
  await sql.unsafe('vacuum analyze rmapp_run_history');
}

/** Average ms per claim of 20 runs, over `claims` claims, with `backlog` pending runs due. */
async function claimLatency(sql: postgres.Sql, url: string, backlog: number, claims = 50): Promise<number> {
  const definition = `bench.backlog${backlog}`;
  await sql.unsafe(`
    insert into rmapp_runs (id, workflow, workflow_version, status, input, wake_at)
    select gen_random_uuid()::text, '${definition}', 'v1', 'pending', '{}'::jsonb, now() - interval '1 hour' + (g * interval '1 ms')
    from generate_series(1, ${backlog}) g`);
  await sql.unsafe('analyze rmapp_runs');
  const db = await openDatabase({ url });
  try {
    const owner = `bench:${randomUUID().slice(0, 8)}`;
    const n = Math.min(claims, Math.floor(backlog / 20));
    const started = performance.now();
    for (let i = 0; i < n; i++) await claimRuns(db, { owner, leaseMs: 60_000, limit: 20, definitions: [[definition, 'v1']] });
    return (performance.now() - started) / n;
  } finally {
    await db.close();
  }
}

/** The plan's lines that say how rows are found (scans, sorts), indented as EXPLAIN prints them. */
async function plan(sql: postgres.Sql, query: string): Promise<string[]> {
  const rows = await sql.unsafe(`explain (analyze, costs off, timing off, summary off) ${query}`);
  return rows.map((r) => String(r['QUERY PLAN'])).filter((l) => /Scan|Sort|Limit|Update|Insert|Append/.test(l));
}

async function workload(admin: string, url: string, concurrency: number, workflows: number) {
  const name = new URL(url).pathname.slice(1);
  await rmappThroughput({ databaseUrl: url, workflows: 20, concurrency });
  const before = await readWriteCounters(admin, name);
  const r = await rmappThroughput({ databaseUrl: url, workflows, concurrency });
  const after = await readWriteCounters(admin, name);
  return { wfPerSec: (workflows / r.totalMs) * 1000, walPerWf: (await walBytesBetween(admin, before.walLsn, after.walLsn)) / workflows };
}

/** Runs the scale section, printing through `out`. */
export async function scaleSection(admin: string, out: (line: string) => void, sizes: { c1: number; c50: number }): Promise<void> {
  out(`\nscale: ${RUNS.toLocaleString('en')} finished runs and ${(RUNS * 7).toLocaleString('en')} history rows already in the tables`);
  const url = await createDatabase(admin, NAME);
  const empty = await createDatabase(admin, `${NAME}_empty`);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const db = await openDatabase({ url });
    await migrate(db);
    await db.close();
    const t0 = performance.now();
    await seed(sql, RUNS);
    out(`seeded in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    for (const backlog of [100, 100_000]) {
      out(
        `claim of 20 runs with a backlog of ${backlog.toLocaleString('en')} due runs: ${(await claimLatency(sql, url, backlog)).toFixed(2)} ms`,
      );
    }
    const [sample] = await sql.unsafe(`select id from rmapp_runs where workflow = 'bench.backlog100' limit 1`);
    const [finished] = await sql.unsafe(`select id from rmapp_runs where workflow = 'bench.six' limit 1`);
    const explain: [string, string][] = [
      [
        'claim',
        `with c as (select id from rmapp_runs where status = 'pending' and wake_at <= now() and (concurrency_key is null or admitted)
           and (workflow || chr(31) || workflow_version) = any(array['bench.backlog100000' || chr(31) || 'v1']) order by wake_at limit 20 for update skip locked)
         select id from c`,
      ],
      [
        'commit (fenced update of one run)',
        `update rmapp_runs set version = version + 1 where id = '${String(sample?.id)}' and version >= 0`,
      ],
      // As runs.ts listRuns sends it: each status's range of rmapp_runs_status_idx, merged (no created_at index).
      [
        'list, unfiltered',
        `select id from (${RUN_STATUSES.map((st) => `(select id, created_at from rmapp_runs where status = '${st}' order by created_at desc, id desc limit 50)`).join(' union all ')}) r
         order by created_at desc, id desc limit 50`,
      ],
      ['list, status = succeeded', `select id from rmapp_runs where status = 'succeeded' order by created_at desc, id desc limit 50`],
      ['history of one run', `select * from rmapp_run_history where run_id = '${String(finished?.id)}' order by id`],
    ];
    for (const [label, query] of explain) {
      await sql.unsafe('begin');
      try {
        out(`EXPLAIN ${label}:`);
        for (const line of await plan(sql, query)) out(`  ${line}`);
      } finally {
        await sql.unsafe('rollback');
      }
    }
    await sql.unsafe(`delete from rmapp_runs where workflow like 'bench.backlog%'`);
    out(
      `${'database'.padEnd(26)}${'c=1 wf/s'.padStart(10)}${'c=50 wf/s'.padStart(11)}${'WAL B/wf c=1'.padStart(14)}${'WAL B/wf c=50'.padStart(15)}`,
    );
    for (const [label, target] of [
      ['empty', empty],
      [`${(RUNS / 1e6).toFixed(1)} M finished runs`, url],
    ] as const) {
      const c1 = await workload(admin, target, 1, sizes.c1);
      const c50 = await workload(admin, target, 50, sizes.c50);
      out(
        `${label.padEnd(26)}${c1.wfPerSec.toFixed(1).padStart(10)}${c50.wfPerSec.toFixed(1).padStart(11)}${c1.walPerWf.toFixed(0).padStart(14)}${c50.walPerWf.toFixed(0).padStart(15)}`,
      );
    }
  } finally {
    await sql.end();
    await dropDatabase(admin, NAME);
    await dropDatabase(admin, `${NAME}_empty`);
  }
}
