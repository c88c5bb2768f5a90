/**
 * {@link createSandbox}: the sandbox the agent and the repository's tests run in, from the
 * operator's settings. Each run gets a clean environment from the allowlist, its own cgroup where
 * the service may make one (else rlimits), and — when its network allowlist is not empty — its own
 * egress proxy. Every command, and all it starts, dies with the service (bubblewrap's
 * `--die-with-parent`, else die-with-parent.ts). See the README's "Threat model" for what this does and
 * does not stop.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkflowError } from '../../state_machine/errors.ts';
import { nulByteError, nulByteIn, runCommand, type CommandResult } from '../process.ts';
import { dropSetIdBits, removeTree } from '../workspace-access.ts';
import { bubblewrapArgs, SANDBOX_RUN_DIR } from './bubblewrap.ts';
import { cgroupsAvailable, createCgroup } from './cgroup.ts';
import { containerArgs } from './container.ts';
import { CLEANUP_TIMEOUT_MS, dieWithParent, EXEC_CHECK, GUARD_STOP_SIGNAL } from './die-with-parent.ts';
import { sandboxEnv } from './env.ts';
import { startEgressProxy } from './egress-proxy.ts';
import { DEFAULT_LIMITS, type Sandbox, type SandboxDriver, type SandboxJob, type SandboxSettings } from './types.ts';

export * from './types.ts';
export { SERVICE_SECRET_VARIABLES, isServiceSecret } from './env.ts';
export { hostAllowed } from './egress-proxy.ts';

const FORWARDER = fileURLToPath(new URL('./net-forwarder.mjs', import.meta.url));
const PROXY_ENV = (url: string) => ({
  HTTP_PROXY: url,
  HTTPS_PROXY: url,
  http_proxy: url,
  https_proxy: url,
  NO_PROXY: 'localhost,127.0.0.1',
  no_proxy: 'localhost,127.0.0.1',
});
/**
 * The bubblewrap driver's launcher (bash: dash cannot close a descriptor above 9; no untrusted text in the
 * script, only in its arguments). It closes every descriptor but 0, 1, 2 and 3 (runCommand's
 * `diagnostics`, which {@link EXEC_CHECK} closes inside before the command starts) — the service may
 * hold some its own launcher left open without close-on-exec, and prlimit and bwrap hand on whatever
 * they are given, so the command could read or write them — then enters the cgroups named by the leading
 * arguments (a count, then the files), then becomes the command through `env`, which drops the two
 * variables bash adds (`SHLVL`, `_`) so that the command's environment is exactly the one built for it.
 */
const LAUNCHER = [
  'for f in /proc/self/fd/*; do fd=${f##*/}; case $fd in 0|1|2|3|*[!0-9]*) ;; *) eval "exec $fd>&-" ;; esac; done',
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done',
  'exec /usr/bin/env -u _ -u SHLVL "$@"',
].join('; ');

/**
 * Whether the `none` and `container` drivers' commands can be tied to the service's life
 * ({@link dieWithParent}: `setpriv` and /proc are Linux's). Elsewhere they run as they are, and
 * `describe()` warns that they may outlive the service.
 */
const TIES = process.platform === 'linux';

/** `argv` tied to this process's life where it can be ({@link TIES}); `cleanup` runs when this process dies. */
function tied(argv: readonly string[], cleanup?: readonly string[], cleanupTimeoutMs?: number): string[] {
  return TIES ? dieWithParent(argv, { cleanup, cleanupTimeoutMs }) : [...argv];
}

/** What {@link createSandbox} is given besides the operator's settings. */
export interface SandboxOptions {
  /**
   * Where the sandbox reports what it could not do but the step survives — a container that may be
   * left because `docker rm -f` did not answer. Default: `process.emitWarning` (stderr).
   */
  warn?: ((message: string, details: Record<string, unknown>) => void) | undefined;
  /**
   * How long `docker`/`podman rm -f` may take, after a command and in the guard when the service dies,
   * before its client is killed and the container reported as maybe left. Default 30 s.
   */
  removeTimeoutMs?: number | undefined;
}

/** The settings with defaults for what is not given. */
export function sandboxSettings(partial: Partial<SandboxSettings> = {}): SandboxSettings {
  return {
    driver: partial.driver ?? 'bubblewrap',
    limits: { ...DEFAULT_LIMITS, ...partial.limits },
    network: partial.network ?? [],
    allowPrivateNetwork: partial.allowPrivateNetwork ?? false,
    env: partial.env ?? [],
    readOnlyPaths: partial.readOnlyPaths ?? [],
    image: partial.image,
    runtime: partial.runtime,
  };
}

/**
 * Creates the sandbox.
 *
 * @example
 * const sandbox = createSandbox({ driver: 'bubblewrap', network: ['registry.npmjs.org'] });
 * const r = await sandbox.run({ argv: ['npm', 'test'], workspace: ws.dir, timeoutMs: 600_000 });
 */
export function createSandbox(partial: Partial<SandboxSettings> = {}, options: SandboxOptions = {}): Sandbox {
  const settings = sandboxSettings(partial);
  const removeTimeoutMs = options.removeTimeoutMs ?? CLEANUP_TIMEOUT_MS;
  const warn =
    options.warn ??
    ((message: string, details: Record<string, unknown>) =>
      process.emitWarning(message, { code: 'RMAPP_SANDBOX', detail: JSON.stringify(details) }));
  const { limits } = settings;
  const runtime = settings.runtime ?? 'docker';
  let cgroups = false;

  async function run(job: SandboxJob): Promise<CommandResult> {
    const id = randomUUID();
    const operators = [...settings.network, ...(job.network ?? [])];
    const network = [...operators, ...(job.repositoryNetwork ?? [])];
    const env = sandboxEnv([...settings.env, ...(job.env ?? [])]);
    // Before anything is made for the command (a cgroup, a proxy, a container): past the wrappers,
    // spawn's own TypeError named the guard's argument index (`args[10]`), not the command's.
    const nul = nulByteIn(job.argv, env);
    if (nul) throw nulByteError(String(job.argv[0]), nul, ' in the sandbox');
    if (settings.driver === 'none') {
      // Under a guard, so that the command and what it starts die with the service (die-with-parent.ts).
      const result = await runCommand(tied(job.argv), {
        cwd: job.workspace,
        input: job.input,
        timeoutMs: job.timeoutMs,
        signal: job.signal,
        env,
        inheritEnv: false,
        maxOutputBytes: limits.outputBytes,
        program: job.argv[0],
        onStdout: job.onStdout,
        onStderr: job.onStderr,
        killGraceMs: job.killGraceMs,
        killGroupOnExit: true,
        stopSignal: TIES ? GUARD_STOP_SIGNAL : undefined,
        diagnostics: true,
      });
      return notRunnable(result, job.argv[0] as string, settings.driver);
    }
    const holder = network.length ? await mkdtemp(join(tmpdir(), 'rmapp-net-')) : undefined;
    const runDir = holder ? await socketDirectory(holder) : undefined;
    const proxy = runDir
      ? await startEgressProxy(join(runDir, 'egress.sock'), {
          allow: network,
          allowPrivate: settings.allowPrivateNetwork ? operators : [],
        })
      : null;
    const cgroup = settings.driver === 'bubblewrap' ? await createCgroup(`rmapp-${id}`, limits) : null;
    try {
      const inner = proxy
        ? [
            'node',
            `${settings.driver === 'container' ? '/opt/rmapp' : dirname(FORWARDER)}/net-forwarder.mjs`,
            `${SANDBOX_RUN_DIR}/egress.sock`,
            '--',
            ...job.argv,
          ]
        : [...job.argv];
      const innerEnv = proxy ? { ...env, ...PROXY_ENV('http://127.0.0.1:3128') } : env;
      let argv: string[];
      let outerEnv: Record<string, string>;
      if (settings.driver === 'container') {
        if (!settings.image)
          throw new WorkflowError('sandbox.image is not set: the container driver needs an image (e.g. node:20).', {
            code: 'SANDBOX_CONFIG',
            category: 'permanent',
          });
        // The container is the daemon's, not the client's: killing the client leaves it running. The
        // guard removes it when the service dies (a normal end removes it below).
        argv = tied(
          [
            runtime,
            ...containerArgs({
              name: `rmapp-${id}`,
              image: settings.image,
              workspace: job.workspace,
              command: inner,
              env: innerEnv,
              limits,
              runDir,
              forwarder: proxy ? FORWARDER : undefined,
            }),
          ],
          [runtime, 'rm', '-f', `rmapp-${id}`],
          removeTimeoutMs,
        );
        // The client passes the variables on by name (-e NAME), so it holds them; it runs with the host's PATH.
        outerEnv = { ...innerEnv, PATH: process.env.PATH ?? '/usr/bin:/bin' };
      } else {
        const bwrap = [
          'bwrap',
          ...bubblewrapArgs({
            workspace: job.workspace,
            command: inner,
            tmpBytes: Math.min(limits.memoryBytes, limits.fileBytes * 4),
            readOnlyPaths: [...settings.readOnlyPaths, ...(proxy ? [FORWARDER] : [])],
            runDir,
            // A repository's command names no host file into the sandbox (see SandboxJob.fromRepository).
            bindArgvFiles: !job.fromRepository,
            // Checked there, and said on descriptor 3, that the program can be started (`$1`: the command's, not the forwarder's).
            launcher: ['/bin/bash', '-c', EXEC_CHECK, 'rmapp-exec', job.argv[0] as string],
          }),
        ];
        // bwrap hands its own (clean) environment to the command (prlimit and bwrap are found on its PATH).
        outerEnv = innerEnv;
        // Without a cgroup, rlimits: memory per process and processes per user (not binding for root).
        const rlimits = [
          'prlimit',
          `--fsize=${limits.fileBytes}`,
          ...(cgroup ? [] : [`--data=${limits.memoryBytes}`, `--nproc=${limits.processes}`]),
          '--',
          ...bwrap,
        ];
        const procsFiles = cgroup?.procsFiles ?? [];
        argv = ['/bin/bash', '-c', LAUNCHER, 'rmapp-sandbox', String(procsFiles.length), ...procsFiles, ...rlimits];
      }
      try {
        // cwd '/': the wrapper's shell exports PWD, which would tell the command where the service runs.
        const result = await runCommand(argv, {
          cwd: '/',
          input: job.input,
          timeoutMs: job.timeoutMs,
          signal: job.signal,
          env: outerEnv,
          inheritEnv: false,
          maxOutputBytes: limits.outputBytes,
          program: job.argv[0],
          onStdout: job.onStdout,
          onStderr: job.onStderr,
          killGraceMs: job.killGraceMs,
          killGroupOnExit: settings.driver === 'container',
          stopSignal: settings.driver === 'container' && TIES ? GUARD_STOP_SIGNAL : undefined,
          diagnostics: true,
          // Where the guard reports a container its `rm -f` could not remove once the service is gone.
          serviceStderr: settings.driver === 'container' && TIES,
        });
        return notRunnable(result, job.argv[0] as string, settings.driver);
      } finally {
        if (settings.driver === 'container') await removeContainer(runtime, `rmapp-${id}`, outerEnv, removeTimeoutMs, warn);
        await dropSetIdBits(job.workspace);
      }
    } finally {
      await cgroup?.destroy();
      await proxy?.close();
      // What the command left in its socket folder is its own: a tree deeper than PATH_MAX, or folders it
      // closed to their owner, failed Node's `rm`, which replaced the command's result and left the folder
      // on the host (test/sb-socket-dir-removed.test.ts). removeTree falls back to `rm -rf`.
      if (holder) await removeTree(holder);
    }
  }

  return {
    driver: settings.driver,
    run,
    async check() {
      if (settings.driver !== 'bubblewrap' && TIES) {
        // The guard that ties the commands to the service is a bash script under util-linux's setpriv
        // (die-with-parent.ts): both are checked here, as the guard starts. Checked without bash, a host
        // with setpriv but no /bin/bash passed, and every command then failed with exit 127.
        const r = await runCommand(['setpriv', '--pdeathsig', 'USR1', '--', '/bin/bash', '-c', 'true'], { timeoutMs: 30_000 }).catch(
          (err: Error) => ({
            exitCode: 1,
            stderr: err.message,
          }),
        );
        if (r.exitCode !== 0)
          throw new WorkflowError(
            `The ${settings.driver} sandbox cannot tie its commands to the service (they would outlive it): setpriv with /bin/bash does not run here (${r.stderr.trim().slice(-300) || `exit ${r.exitCode}`}) — install util-linux and bash (apt-get install util-linux bash), or set sandbox.driver to bubblewrap.`,
            { code: 'SANDBOX_UNAVAILABLE', category: 'permanent' },
          );
      }
      if (settings.driver === 'none') return;
      if (settings.driver === 'container') {
        if (!settings.image)
          throw new WorkflowError(
            'sandbox.image is not set: the container driver needs an image with the tools your tests use (e.g. node:20).',
            { code: 'SANDBOX_CONFIG', category: 'validation' },
          );
        const r = await runCommand([runtime, 'version'], { timeoutMs: 30_000 }).catch((err: Error) => ({
          exitCode: 1,
          stderr: err.message,
        }));
        if (r.exitCode !== 0)
          throw new WorkflowError(
            `The container sandbox cannot reach ${runtime}: ${r.stderr.trim().slice(-300)} — start the ${runtime} daemon, or set sandbox.driver to bubblewrap.`,
            { code: 'SANDBOX_UNAVAILABLE', category: 'permanent' },
          );
        return;
      }
      cgroups = await cgroupsAvailable();
      const empty = await mkdtemp(join(tmpdir(), 'rmapp-sandbox-check-'));
      try {
        // Not only "it starts": a host file next to the workspace is invisible, and the command is not the service's user on the service's host.
        const canary = join(empty, 'host-canary');
        await writeFile(canary, 'host');
        const workspace = join(empty, 'ws');
        await mkdir(workspace);
        const probe = `test ! -e '${canary}' && test "$(id -u)" = 1000 && test "$(cat /proc/sys/kernel/hostname)" = rmapp-sandbox`;
        const r = await run({ argv: ['/bin/sh', '-c', probe], workspace, timeoutMs: 30_000 }).catch((err: Error) => ({
          exitCode: 1,
          stderr: err.message,
        }));
        if (r.exitCode !== 0) {
          throw new WorkflowError(
            `The bubblewrap sandbox does not start or does not isolate here: ${r.stderr.trim().slice(-300) || `exit ${r.exitCode}`} — install it (apt-get install bubblewrap) and allow unprivileged user namespaces, or set sandbox.driver to container.`,
            { code: 'SANDBOX_UNAVAILABLE', category: 'permanent' },
          );
        }
      } finally {
        await rm(empty, { recursive: true, force: true });
      }
    },
    describe() {
      const net = settings.network.length ? `network only to ${settings.network.join(', ')}` : 'no network';
      const untied = TIES
        ? []
        : [
            `on ${process.platform} the ${settings.driver} sandbox's commands are not tied to the service: a command still running when the service is killed goes on running.`,
          ];
      if (settings.driver === 'none') {
        return {
          summary: 'none',
          warnings: [
            'sandbox.driver is "none": the coding agent and the repositories\' tests run with the service\'s filesystem and network (only their environment is cleaned). Use it only for repositories and agents you trust.',
            ...untied,
          ],
        };
      }
      if (settings.driver === 'container') return { summary: `${runtime} image ${settings.image}, ${net}`, warnings: untied };
      const warnings =
        cgroups || process.getuid?.() !== 0
          ? []
          : [
              'the sandbox cannot create cgroups here and the service runs as root: the process limit is not enforced (memory is limited per process).',
            ];
      return { summary: `bubblewrap, ${cgroups ? 'cgroup limits' : 'rlimits'}, ${net}`, warnings };
    },
  };
}

/**
 * The folder the egress proxy's socket is in, mounted writable into the sandbox (`/run/rmapp`), made
 * inside `holder` (a folder of mode 0700 that the sandbox never sees). Mounted itself, the sandbox's
 * user — the service's own on the host — could `chmod 777` it and leave a setuid copy of a shell in it
 * for the length of its command: under /tmp, any local user then ran it as the service's user. Here
 * whatever it does to its folder, the holder keeps everyone else out (as the workspaces' root does).
 */
async function socketDirectory(holder: string): Promise<string> {
  const dir = join(holder, 'run');
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/**
 * `runtime rm -f name` after a command, for `timeoutMs` at most: a daemon that does not answer held the
 * step for as long as its client waited. Past the deadline the client is killed (runCommand's timeout:
 * SIGTERM, SIGKILL half a second later) and `warn` names the container, which may still be running —
 * with the agent in it, if the command was stopped. Any other failure is no news: `--rm` has usually
 * removed the container already, and podman says so with a non-zero status.
 */
async function removeContainer(
  runtime: string,
  name: string,
  env: Record<string, string>,
  timeoutMs: number,
  warn: (message: string, details: Record<string, unknown>) => void,
): Promise<void> {
  const err = await runCommand([runtime, 'rm', '-f', name], { timeoutMs, killGraceMs: 500, env, inheritEnv: false }).then(
    () => null,
    (e: unknown) => e,
  );
  if ((err as { code?: unknown } | null)?.code !== 'COMMAND_TIMEOUT') return;
  warn(
    `The container ${name} may be left running: \`${runtime} rm -f ${name}\` did not finish within ${timeoutMs / 1000} s (does the ${runtime} daemon answer?), so its client was killed and the step went on. Remove it with \`${runtime} rm -f ${name}\` once the daemon answers.`,
    { container: name, runtime, timeoutMs },
  );
}

/** Where each driver looks for a command that was not found. */
const NOT_FOUND_HINT: Record<SandboxDriver, string> = {
  bubblewrap: 'is it installed under /usr, or listed in sandbox.readOnlyPaths?',
  container: 'is it installed in sandbox.image (and the container runtime on the host)?',
  none: "is it installed, on the PATH of the sandbox's environment (/usr/local/bin:/usr/bin:/bin unless sandbox.env passes PATH)?",
};

/**
 * A command the sandbox could not start (not installed, not visible inside) fails as it would outside:
 * COMMAND_NOT_RUNNABLE. Only rmapp's own wrappers can say so — the guard of the `none` and `container`
 * drivers (die-with-parent.ts) and the bubblewrap driver's {@link EXEC_CHECK} — on descriptor 3
 * (runCommand's `diagnostics`), closed before the command starts. Read from stderr, as it was, a
 * command printing `rmapp sandbox: cannot run x` (or bwrap's `bwrap: execvp x`) and exiting non-zero
 * was reported as never having run, its own output and status replaced by rmapp's diagnosis. Under
 * the container driver the runtime on the host is checked so; a program missing from the image is the
 * runtime's own exit status (127) and message, as is what the network forwarder says inside.
 * Returns the result, without `diagnostics`, otherwise.
 */
function notRunnable(result: CommandResult, program: string, driver: SandboxDriver): CommandResult {
  const { diagnostics, ...rest } = result;
  const m = /^cannot run [^\n]*$/m.exec(diagnostics ?? '');
  if (result.exitCode !== 0 && m) {
    throw new WorkflowError(`Could not run ${program} in the sandbox: ${m[0]} — ${NOT_FOUND_HINT[driver]}`, {
      code: 'COMMAND_NOT_RUNNABLE',
      category: 'permanent',
      details: { command: program },
    });
  }
  return rest;
}
