/**
 * Where a workflow's WAL goes: runs the rmapp workload on a fresh database and breaks the WAL it
 * wrote down by relation and record type with pg_walinspect (records of other databases left out).
 * `node --import tsx bench/wal-breakdown.ts [workflows] [concurrency]` (concurrency 1 by default; the
 * benchmark's c=50 section is `… 3000 50`). `RMAPP_BENCH_WAL_DB` names the scratch database.
 */
import postgres from 'postgres';
import { createDatabase, dropDatabase } from './measure.ts';
import { rmappThroughput } from './rmapp.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.argv[2] ?? 200);
const C = Number(process.argv[3] ?? 1);
const NAME = process.env.RMAPP_BENCH_WAL_DB ?? 'rmapp_bench_wal';

const url = await createDatabase(ADMIN, NAME);
const sql = postgres(url, { max: 1, onnotice: () => {} });
try {
  await sql.unsafe('create extension if not exists pg_walinspect');
  await rmappThroughput({ databaseUrl: url, workflows: 50, concurrency: C });
  await sql.unsafe('checkpoint');
  // Keeps the batch's WAL segments until they are read: with other databases writing, a c=50 batch's
  // segments were recycled before pg_walinspect got to them. Temporary: it goes with this session even
  // if the process is killed (an interrupted run once left a permanent one holding WAL).
  await sql.unsafe(`select pg_create_physical_replication_slot('${NAME}', true, true)`);
  const oid = (await sql.unsafe(`select oid from pg_database where datname = '${NAME}'`))[0]?.oid;
  const from = (await sql.unsafe('select pg_current_wal_lsn() as lsn'))[0]?.lsn;
  await rmappThroughput({ databaseUrl: url, workflows: N, concurrency: C });
  const to = (await sql.unsafe('select pg_current_wal_lsn() as lsn'))[0]?.lsn;
  // This database's records: those with a block of it, and the commit records of the transactions
  // that wrote them (matched by xid: a commit record names no block).
  const records = `with mine as (
      select resource_manager, record_type, record_length, fpi_length, xid,
        substring(block_ref from '/${oid}/(\\d+)') as relfile
      from pg_get_wal_records_info('${from}', '${to}')),
    xids as (select distinct xid from mine where relfile is not null and xid <> '0')
    select * from mine where relfile is not null or (resource_manager = 'Transaction' and xid in (select xid from xids))`;
  const rows = await sql.unsafe(`
    with r as (${records})
    select coalesce(c.relname, r.relfile, '-') as rel, resource_manager || '/' || split_part(record_type, ' ', 1) as kind,
      count(*)::int as n, sum(record_length)::int as bytes, sum(fpi_length)::int as fpi
    from r left join pg_class c on c.relfilenode::text = r.relfile
    group by 1, 2 order by 4 desc limit 25`);
  // What the WAL position advances by for them: each record starts on an 8-byte boundary (and each
  // 8 KB page has a 24-byte header), the figure the benchmark's cluster-wide "WAL B/wf" counts.
  const [all] = await sql.unsafe(`with r as (${records})
    select count(*)::int as n, sum(record_length)::bigint as bytes, sum((record_length + 7) / 8 * 8)::bigint as aligned from r`);
  let total = 0;
  for (const r of rows) total += Number(r.bytes);
  console.log(`WAL per workflow by relation and record (c=${C}, ${N} workflows; total ${(total / N).toFixed(0)} B/wf of records shown)`);
  for (const r of rows)
    console.log(
      `${String(r.rel).padEnd(36)}${String(r.kind).padEnd(28)}${(Number(r.n) / N).toFixed(2).padStart(8)} rec/wf${(Number(r.bytes) / N).toFixed(0).padStart(8)} B/wf  fpi ${(Number(r.fpi) / N).toFixed(0)} B/wf`,
    );
  const aligned = (Number(all?.aligned) * (1 + 24 / 8192)) / N;
  console.log(
    `all of this database's records and their commits: ${(Number(all?.n) / N).toFixed(2)} rec/wf, ${(Number(all?.bytes) / N).toFixed(0)} B/wf; ` +
      `aligned as written, with page headers: ${aligned.toFixed(0)} B/wf`,
  );
} finally {
  await sql.unsafe(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '${NAME}'`);
  await sql.end();
  await dropDatabase(ADMIN, NAME);
}
