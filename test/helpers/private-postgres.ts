/**
 * A Postgres cluster of the test's own, on its own port and socket directory, for faults that would
 * disturb other suites on the machine's shared server (a restart). Built with the server's initdb and
 * pg_ctl, run as the `postgres` user when the test runs as root (initdb refuses root).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PrivatePostgres {
  url: string;
  /** `pg_ctl restart` in `mode` (fast: clients are disconnected, the server comes back). */
  restart(mode?: 'fast' | 'immediate'): void;
  stop(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const version = readdirSync(root).sort().at(-1);
  if (!version) throw new Error(`No Postgres server under ${root}: install postgresql.`);
  return join(root, version, 'bin');
}

/** Starts an empty cluster with trust auth; call `stop()` when done. */
export function startPrivatePostgres(port: number): PrivatePostgres {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-pg-'));
  chmodSync(dir, 0o755);
  const asRoot = userInfo().uid === 0;
  const postgresUid = asRoot ? Number(execFileSync('id', ['-u', 'postgres']).toString().trim()) : -1;
  if (asRoot) chownSync(dir, postgresUid, -1);
  const run = (cmd: string, args: string[]) =>
    asRoot
      ? execFileSync('runuser', ['-u', 'postgres', '--', join(binDir(), cmd), ...args], { stdio: 'pipe' })
      : execFileSync(join(binDir(), cmd), args, { stdio: 'pipe' });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const ctl = (...args: string[]) =>
    run('pg_ctl', [
      '-D',
      data,
      '-w',
      '-t',
      '60',
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      ...args,
    ]);
  ctl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart(mode = 'fast') {
      ctl('restart', '-m', mode);
    },
    stop() {
      try {
        if (existsSync(data)) ctl('stop', '-m', 'immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
