/**
 * Concurrency 1, statement by statement (bench/README.md, "ninth session"): where a workflow's wall
 * time goes, and what one of its statements costs when sent back to back against after a pause.
 *
 * 1. The engine: `[workflows]` runs of `bench.six` one at a time, each `Database.query` timed from call
 *    to reply — the time inside statements, the time between them, per statement text — and, on the
 *    sockets, the JavaScript from a reply's arrival to the next statement's write (Postgres's backend
 *    sits idle meanwhile), split into its stages by marks at the socket's data and write, the store's
 *    `query` call and return, and the step function's start and end (bench/workflows.ts `benchMark`).
 * 2. A bare `pg.Client` on the same database: the engine's lean commit (captured with its real
 *    parameters), the baseline's UPSERT and `select $1`, 1,000 each per round, sent back to back, after
 *    each `RMAPP_BENCH_GAP_MS` of busy JavaScript (a comma-separated list, 0.05,0.1,0.15,0.2,0.3 by
 *    default; outside the timed part, as a macrostep is), and after a 1 ms timer.
 *
 * `node --import tsx bench/statement-gap.ts [workflows]` (500 by default); `RMAPP_BENCH_GAP_DB` names
 * the scratch database.
 */
import net from 'node:net';
import pg from 'pg';
import { createEngine, openDatabase, type Database } from '../dist/index.js';
import { createDatabase, dropDatabase, percentile } from './measure.ts';
import { workflows } from './workflows.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_GAP_DB ?? 'rmapp_bench_gap';
const N = Number(process.argv[2] ?? 500);
const GAPS_MS = (process.env.RMAPP_BENCH_GAP_MS ?? '0.05,0.1,0.15,0.2,0.3').split(',').map(Number);
const LEAN = /^with u as \(\s*update rmapp_runs r set snapshot/;

/**
 * The stages of one statement's cycle at concurrency 1, by consecutive marks: A a reply arrives on a
 * socket, R the store's `query` returns, D the step function starts, D2 it returns, G the store's `query`
 * is called (the next write), H the statement is written to the socket.
 */
const STAGES: [string, string, string][] = [
  ['A', 'R', 'reply → query returns (driver, pool)'],
  ['R', 'D', '→ step starts (the commit handled)'],
  ['D', 'D2', 'step (a no-op)'],
  ['D2', 'G', '→ next query (macrostep, group-commit hop, the write built)'],
  ['G', 'H', '→ socket write (pool, driver)'],
  ['H', 'A', '→ reply (kernel, Postgres)'],
];

const url = await createDatabase(ADMIN, NAME);
try {
  const lean = await engineSplit(url);
  await bareLoops(url, lean);
} finally {
  await dropDatabase(ADMIN, NAME);
}

/** Part 1; returns a lean commit's text and parameters as the engine sent them. */
async function engineSplit(databaseUrl: string): Promise<{ text: string; params: unknown[] }> {
  const db = await openDatabase({ url: databaseUrl });
  let inQuery = 0;
  let statements = 0;
  let lean: { text: string; params: unknown[] } | null = null;
  const perText = new Map<string, { n: number; ms: number }>();
  const marks = stageMarks();
  const timed: Database = {
    kind: db.kind,
    description: db.description,
    query: async (text, params) => {
      if (!lean && params && LEAN.test(text)) lean = { text, params: [...params] };
      const t = performance.now();
      marks.mark('G', t);
      statements += 1;
      try {
        return await db.query(text, params);
      } finally {
        marks.mark('R');
        const ms = performance.now() - t;
        inQuery += ms;
        const key = text.replace(/\s+/g, ' ').slice(0, 50);
        const e = perText.get(key) ?? { n: 0, ms: 0 };
        e.n += 1;
        e.ms += ms;
        perText.set(key, e);
      }
    },
    script: (list) => {
      statements += 1;
      return db.script(list);
    },
    listen: (channel, fn, options) => db.listen(channel, fn, options),
    close: () => db.close(),
  };
  const engine = createEngine({ database: timed, workflows });
  try {
    await engine.startWorker();
    const one = async () => void (await engine.waitFor(await engine.start('bench.six', {})));
    for (let i = 0; i < 300; i++) await one();
    for (let round = 1; round <= 3; round++) {
      inQuery = 0;
      statements = 0;
      perText.clear();
      const gaps = socketGaps(marks);
      marks.start();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < N; i++) await one();
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const idle = gaps.stop();
      const stages = marks.stop();
      console.log(
        `engine round ${round}: ${(wall / N).toFixed(2)} ms per workflow, ${(inQuery / N).toFixed(2)} inside ${(statements / N).toFixed(2)} statements, ` +
          `${((wall - inQuery) / N).toFixed(2)} between them; worker CPU ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms; ` +
          `reply to next write p10 ${percentile(idle, 10).toFixed(3)} p50 ${percentile(idle, 50).toFixed(3)} p90 ${percentile(idle, 90).toFixed(3)} ms`,
      );
      console.log(
        `  stages per statement (mean µs): ${STAGES.map(([from, to, what]) => `${what} ${stageMean(stages, from, to)}`).join(' · ')}`,
      );
    }
    for (const [text, e] of perText) console.log(`  ${(e.n / N).toFixed(2)} per workflow, ${(e.ms / e.n).toFixed(3)} ms each: ${text}…`);
  } finally {
    await engine.stop();
    await db.close();
  }
  if (!lean) throw new Error('statement-gap: the engine sent no lean commit');
  return lean;
}

/**
 * The time from a reply's arrival on a socket to the next write on any socket, while collecting: the
 * JavaScript between one statement and the next, during which the backend that answered sits idle.
 */
function socketGaps(marks: StageMarks): { stop(): number[] } {
  const gaps: number[] = [];
  let lastData = 0;
  let lastWrite = 0;
  const { write, emit } = net.Socket.prototype;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    const t = performance.now();
    marks.mark('H', t);
    if (lastData > lastWrite) gaps.push(t - lastData);
    lastWrite = t;
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  net.Socket.prototype.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]) {
    if (event === 'data') {
      lastData = performance.now();
      marks.mark('A', lastData);
    }
    return (emit as (...a: unknown[]) => boolean).apply(this, [event, ...args]);
  } as typeof emit;
  return {
    stop() {
      net.Socket.prototype.write = write;
      net.Socket.prototype.emit = emit;
      return gaps;
    },
  };
}

interface StageMarks {
  mark(kind: string, at?: number): void;
  start(): void;
  /** The time between consecutive marks, by `from→to`. */
  stop(): Map<string, { n: number; ms: number }>;
}

function stageMarks(): StageMarks {
  let on = false;
  let last: { kind: string; at: number } | null = null;
  const spans = new Map<string, { n: number; ms: number }>();
  const mark = (kind: string, at = performance.now()) => {
    if (!on) return;
    if (last) {
      const key = `${last.kind}→${kind}`;
      const e = spans.get(key) ?? { n: 0, ms: 0 };
      e.n += 1;
      e.ms += at - last.at;
      spans.set(key, e);
    }
    last = { kind, at };
  };
  // The step function marks through a global, so that the benchmark's workflows module stays plain.
  (globalThis as Record<symbol, unknown>)[Symbol.for('rmapp.bench.mark')] = (kind: string) => mark(kind);
  return {
    mark,
    start: () => {
      spans.clear();
      last = null;
      on = true;
    },
    stop: () => {
      on = false;
      return spans;
    },
  };
}

function stageMean(spans: Map<string, { n: number; ms: number }>, from: string, to: string): string {
  const e = spans.get(`${from}→${to}`);
  return e ? ((e.ms / e.n) * 1000).toFixed(0) : '-';
}

/** Part 2: the lean commit (on a run leased to this loop), an UPSERT and `select $1`, three ways. */
async function bareLoops(databaseUrl: string, lean: { text: string; params: unknown[] }): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, options: '-c enable_seqscan=off -c jit=off' });
  await client.connect();
  try {
    const [run] = (await client.query<{ id: string; version: number }>('select id, version from rmapp_runs limit 1')).rows;
    if (!run) throw new Error('statement-gap: no run to commit to');
    await client.query(`update rmapp_runs set status = 'running', lease_owner = 'gap', lease_epoch = 1, finished_at = null where id = $1`, [
      run.id,
    ]);
    await client.query('create table gap_kv (k int primary key, v int)');
    let version = Number(run.version);
    let v = 0;
    const p = lean.params;
    const statements: Record<string, () => Promise<number>> = {
      'lean commit': async () =>
        (await client.query({ name: 'lean', text: lean.text, values: [run.id, p[1], p[2], p[3], p[4], version++, 'gap', 1, p[8]] }))
          .rowCount ?? 0,
      upsert: async () =>
        (
          await client.query({
            name: 'up',
            text: 'insert into gap_kv values (1, $1) on conflict (k) do update set v = excluded.v',
            values: [v++],
          })
        ).rowCount ?? 0,
      'select $1': async () => (await client.query({ name: 'one', text: 'select $1::int', values: [1] })).rowCount ?? 0,
    };
    const pauses: Record<string, () => Promise<void> | void> = {
      'back to back': () => {},
      ...Object.fromEntries(
        GAPS_MS.map((gap) => [
          `after ${gap} ms of JavaScript`,
          () => {
            const until = performance.now() + gap;
            while (performance.now() < until);
          },
        ]),
      ),
      'after a 1 ms timer': () => new Promise((resolve) => setTimeout(resolve, 1)),
    };
    for (let round = 1; round <= 2; round++) {
      for (const [pauseName, pause] of Object.entries(pauses)) {
        const line: string[] = [];
        for (const [name, send] of Object.entries(statements)) {
          for (let i = 0; i < 100; i++) await send();
          let ms = 0;
          for (let i = 0; i < 1000; i++) {
            await pause();
            const t = performance.now();
            if ((await send()) !== 1) throw new Error(`statement-gap: ${name} changed no row (its fence failed)`);
            ms += performance.now() - t;
          }
          line.push(`${name} ${(ms / 1000).toFixed(3)} ms`);
        }
        console.log(`bare client, round ${round}, ${pauseName}: ${line.join(' · ')}`);
      }
    }
  } finally {
    await client.end();
  }
}
