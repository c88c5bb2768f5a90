/**
 * The container driver, for production hosts with docker or podman: `run --rm` of the configured
 * image with the workspace mounted at /workspace (its `.git` read-only), a read-only root, a private
 * /tmp, no capabilities, no new privileges, memory and process limits, and `--network none` (an
 * allowlist reaches the egress proxy through its socket, mounted, as in the bubblewrap driver; the
 * image then needs `node` for the forwarder).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SANDBOX_RUN_DIR, SANDBOX_WORKSPACE } from './bubblewrap.ts';
import type { SandboxLimits } from './types.ts';

/** The `docker`/`podman` argv (without the program) that runs `command` in `workspace`. */
export function containerArgs(options: {
  name: string;
  image: string;
  workspace: string;
  command: readonly string[];
  env: Record<string, string>;
  limits: SandboxLimits;
  runDir?: string | undefined;
  /** The forwarder script on the host, mounted read-only when the network is an allowlist. */
  forwarder?: string | undefined;
}): string[] {
  const { limits } = options;
  const args = [
    'run',
    '--rm',
    '-i',
    '--name',
    options.name,
    '--network',
    'none',
    '--read-only',
    '--tmpfs',
    '/tmp:rw,exec,mode=1777',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--user',
    '1000:1000',
    '--memory',
    String(limits.memoryBytes),
    '--pids-limit',
    String(limits.processes),
    '--ulimit',
    `fsize=${limits.fileBytes}`,
    '-v',
    `${options.workspace}:${SANDBOX_WORKSPACE}`,
  ];
  if (existsSync(join(options.workspace, '.git'))) args.push('-v', `${join(options.workspace, '.git')}:${SANDBOX_WORKSPACE}/.git:ro`);
  if (options.runDir) args.push('-v', `${options.runDir}:${SANDBOX_RUN_DIR}`);
  if (options.forwarder) args.push('-v', `${options.forwarder}:/opt/rmapp/net-forwarder.mjs:ro`);
  args.push('-w', SANDBOX_WORKSPACE);
  // Names only: the values come from the client's environment, so they never show in `ps`.
  for (const k of Object.keys(options.env)) args.push('-e', k);
  args.push('--', options.image, ...options.command);
  return args;
}
