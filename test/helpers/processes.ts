/** Spawning real rmapp processes for crash and CLI tests; every child is killed when the test ends. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fixtureModule } from './fixture-bundles.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${ROOT}bin/rmapp.mjs`;
/** The test workflows as TypeScript: what a user's `--workflows x.ts` is (the CLI loads it through tsx). */
export const TEST_WORKFLOWS_SOURCE = `${ROOT}test/fixtures/test-workflows.ts`;
/** The same module bundled for the run (test/helpers/fixture-bundles.ts): processes start without compiling it. */
export const TEST_WORKFLOWS = fixtureModule(TEST_WORKFLOWS_SOURCE);

const children = new Set<ChildProcess>();

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `rmapp <args>`; its stdout+stderr are collected. */
export function spawnRmapp(args: string[], env: Record<string, string | undefined> = {}): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => out, exited };
}

/** Runs `rmapp <args>` to completion. */
export async function runRmapp(args: string[], env: Record<string, string | undefined> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  // 'exit' may come before the pipes gave their last output (Node's child_process documentation): wait
  // for them to close too, bounded, since a grandchild that inherited them would hold them open.
  await Promise.race([
    Promise.all([child.stdout, child.stderr].map((s) => (s.closed ? undefined : new Promise((r) => s.once('close', r))))),
    new Promise((r) => setTimeout(r, 5_000).unref()),
  ]);
  return { code, stdout, stderr };
}

/** Kills every process a test spawned and did not reap. */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

/** Lines of a counter file (one line per step execution). */
export function readCounts(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n').filter(Boolean)) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}

/** Polls until `predicate` holds (or throws after `timeoutMs`). */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
