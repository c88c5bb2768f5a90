/**
 * The physical baseline: what "durable after every step" costs at minimum on this Postgres — 6
 * single-row UPSERTs per workflow, each its own transaction (one round trip, one commit), postgres.js.
 */
import postgres from 'postgres';
import { runConcurrently, type ThroughputResult } from './measure.ts';

export async function baselineThroughput(opts: { databaseUrl: string; workflows: number; concurrency: number }): Promise<ThroughputResult> {
  const sql = postgres(opts.databaseUrl, { max: Math.max(1, opts.concurrency), onnotice: () => {} });
  await sql`create table if not exists bench_baseline (id text primary key, step int not null, updated_at timestamptz not null default now())`;
  await sql`truncate bench_baseline`;
  let next = 0;
  let statements = 0;
  const result = await runConcurrently(opts.workflows, opts.concurrency, async () => {
    const id = `wf-${next++}`;
    for (let stepNo = 1; stepNo <= 6; stepNo++) {
      await sql`insert into bench_baseline (id, step) values (${id}, ${stepNo})
                on conflict (id) do update set step = excluded.step, updated_at = now()`;
      statements += 1;
    }
  });
  await sql.end();
  return { ...result, statements };
}
