/**
 * A LISTEN connection's former backends are terminated when the connection is made again
 * (persistence/listener.ts `Listener`): a backend the process lost may still hold its session locks.
 * Only this process's are: "never a backend of another process". After a failover behind a stable
 * address (a virtual IP, a proxy, DNS) the connection is made again to ANOTHER server, where the same
 * process id can name an unrelated client's backend — servers in containers or on other hosts have
 * their own PID spaces — one connected long before (a hot standby's read clients), which an age guard
 * alone does not tell apart. Here: two private clusters, each in its own PID namespace (`unshare`), the
 * namespaces' next pids set so that the rmapp store's backends on X and an unrelated client's on Y get
 * the same ids; a proxy of the test's own moves from X to Y and cuts every connection. The unrelated
 * client's connections must all survive the store's reconnection.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/index.ts';
import { closedPort as freePort } from './helpers/ports.ts';
import { until } from './helpers/processes.ts';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});

const PG_BIN = execFileSync('pg_config', ['--bindir']).toString().trim();
const postgresUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());

/** A cluster run as pid 1's child in a PID namespace of its own; `setNextPid` sets that namespace's next pid. */
async function namespacedPostgres(port: number): Promise<{ url: string; setNextPid(pid: number): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'h9-nspg-'));
  chmodSync(dir, 0o755);
  chownSync(dir, postgresUid, -1);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    stdio: 'pipe',
  });
  const child: ChildProcess = spawn(
    'unshare',
    [
      '--pid',
      '--mount-proc',
      '--kill-child',
      'runuser',
      '-u',
      'postgres',
      '--',
      join(PG_BIN, 'postgres'),
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'autovacuum=off',
    ],
    { stdio: 'ignore' },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await until(
    async () => {
      const c = new pg.Client({ connectionString: url });
      try {
        await c.connect();
        await c.end();
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    `the cluster on port ${port}`,
  );
  // The namespace's pid 1 (unshare's child).
  const inside = Number(
    execFileSync('pgrep', ['-P', String(child.pid)])
      .toString()
      .trim()
      .split('\n')[0],
  );
  return {
    url,
    setNextPid(pid) {
      // nsenter forks once inside the namespace (taking a pid) before the shell writes the value.
      execFileSync('nsenter', ['-t', String(inside), '-p', '-m', '--', 'sh', '-c', `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid`]);
    },
  };
}

/** A TCP proxy whose target can move (a failover behind one address); `cut` closes every connection. */
async function movableProxy(target: number): Promise<{ port: number; moveTo(port: number): void; cut(): void }> {
  const sockets = new Set<net.Socket>();
  let to = target;
  const server = net.createServer((client) => {
    const upstream = net.connect(to, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return {
    port: (server.address() as net.AddressInfo).port,
    moveTo(port) {
      to = port;
    },
    cut() {
      for (const s of sockets) s.destroy();
    },
  };
}

describe('a failover behind one address to a server in another PID space', () => {
  it('terminates no backend of another client there, whatever its process id', async () => {
    const x = await namespacedPostgres(await freePort());
    const y = await namespacedPostgres(await freePort());
    // The unrelated client on Y: connected first, its backends at pids 5000 on.
    y.setNextPid(5000);
    const others: { client: pg.Client; pid: number; lost: string | null }[] = [];
    for (let i = 0; i < 20; i++) {
      const client = new pg.Client({ connectionString: y.url, application_name: 'unrelated' });
      const entry = { client, pid: 0, lost: null as string | null };
      client.on('error', (err) => (entry.lost = err.message));
      client.on('end', () => (entry.lost ??= 'ended'));
      await client.connect();
      entry.pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      others.push(entry);
    }
    cleanups.push(() => Promise.all(others.map((o) => o.client.end().catch(() => {}))));
    const otherPids = new Set(others.map((o) => o.pid));

    // The rmapp store on X through the proxy: its backends at pids 5000 on too.
    const proxy = await movableProxy(Number(new URL(x.url).port));
    x.setNextPid(5000);
    const db: Database = await openDatabase({ url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` });
    cleanups.push(() => db.close({ force: true }));
    await db.listen('h9_wake', () => {}, { timeoutMs: 2_000 });
    const lock = await db.holdLock!('rmapp.worker:h9', () => {});
    expect(lock.held).toBe(true);
    const admin = new pg.Client({ connectionString: x.url });
    await admin.connect();
    const listener = (
      await admin.query<{ pid: number }>(
        `select l.pid from pg_locks l where l.locktype = 'advisory' and l.granted and l.classid = ${0x726d776b}::oid`,
      )
    ).rows[0]?.pid;
    await admin.end();
    expect(listener, 'the store holds its lock on X').toBeTypeOf('number');
    // The scene: the store's LISTEN backend on X has the pid of one of the unrelated client's on Y.
    expect(otherPids.has(listener!), `listener pid ${listener} among the other client's ${[...otherPids].join(',')}`).toBe(true);

    // The failover: the address now leads to Y, every connection through it is cut.
    proxy.moveTo(Number(new URL(y.url).port));
    proxy.cut();
    const yAdmin = new pg.Client({ connectionString: y.url });
    await yAdmin.connect();
    cleanups.push(() => yAdmin.end().catch(() => {}));
    // Made again on Y: the lock is held there (taken again after the store's former backends were dealt with).
    await until(
      async () =>
        (
          await yAdmin.query(
            `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
              where l.locktype = 'advisory' and l.granted and l.classid = ${0x726d776b}::oid and a.application_name = 'rmapp'`,
          )
        ).rows.length > 0,
      30_000,
      'the store reconnected to Y and took its lock there',
    );
    // Whatever a termination would have done has been done by now: each of the other client's connections answers.
    for (const o of others) await o.client.query('select 1').catch((err: Error) => (o.lost ??= err.message));
    const lost = others.filter((o) => o.lost !== null).map((o) => `pid ${o.pid}: ${o.lost}`);
    expect(lost, `unrelated backends on Y terminated by the rmapp store (its former LISTEN backend on X was pid ${listener})`).toEqual([]);
  }, 120_000);
});
