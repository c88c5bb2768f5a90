/**
 * The bubblewrap driver (`bwrap`, Debian package `bubblewrap`): every namespace unshared (user, pid,
 * network, ipc, uts, cgroup), no capabilities, a new session (no terminal injection), killed with
 * the service. The host's system directories are read-only; /etc only in the few files programs
 * need to run (no shadow, no service configuration); no /home, /root, /srv, /var or the service's
 * directory. The workspace is writable at /workspace except its `.git`, which is read-only so the
 * sandbox cannot plant hooks or configuration that the service's git (outside) would run.
 */
import { existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

/** Where the workspace is inside the sandbox (the container driver uses the same). */
export const SANDBOX_WORKSPACE = '/workspace';
/** Where the egress proxy's socket directory is inside the sandbox. */
export const SANDBOX_RUN_DIR = '/run/rmapp';

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const ETC_FILES = [
  '/etc/alternatives', '/etc/ssl', '/etc/ca-certificates', '/etc/pki', '/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/ld.so.cache',
  '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime', '/etc/passwd', '/etc/group', '/etc/mime.types',
];

/** Read-only host paths: the system, node's installation when it is elsewhere, the operator's extras, the files the command names. */
function readOnlyArgs(extra: readonly string[], argv: readonly string[]): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    if (!existsSync(dir)) continue;
    const st = lstatSync(dir);
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  for (const file of ETC_FILES) args.push('--ro-bind-try', file, file);
  const nodePrefix = dirname(dirname(process.execPath));
  if (!SYSTEM_DIRS.some((d) => nodePrefix === d || nodePrefix.startsWith(`${d}/`))) args.push('--ro-bind', nodePrefix, nodePrefix);
  for (const path of extra) args.push('--ro-bind-try', path, path);
  // The operator's command may name its own script (`node /opt/agent/run.mjs`): that file, nothing around it.
  for (const arg of argv) if (isAbsolute(arg) && existsSync(arg) && statSync(arg).isFile() && !arg.startsWith('/usr/')) args.push('--ro-bind', arg, arg);
  return args;
}

/** The `bwrap` argv (without the program) that runs `command` in `workspace`. */
export function bubblewrapArgs(options: {
  workspace: string;
  command: readonly string[];
  env: Record<string, string>;
  readOnlyPaths: readonly string[];
  /** The egress proxy's socket directory on the host, when the network is an allowlist. */
  runDir?: string | undefined;
}): string[] {
  const args = [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--uid', '1000',
    '--gid', '1000',
    '--hostname', 'rmapp-sandbox',
    ...readOnlyArgs(options.readOnlyPaths, options.command),
    '--proc', '/proc',
    '--dev', '/dev',
    '--tmpfs', '/tmp',
    '--dir', '/tmp/home',
    '--bind', options.workspace, SANDBOX_WORKSPACE,
  ];
  if (existsSync(join(options.workspace, '.git'))) args.push('--ro-bind', join(options.workspace, '.git'), `${SANDBOX_WORKSPACE}/.git`);
  if (options.runDir) args.push('--bind', options.runDir, SANDBOX_RUN_DIR);
  // The sandbox's own root (a tmpfs holding the mount points) is read-only too: only /workspace and /tmp take writes.
  args.push('--remount-ro', '/', '--chdir', SANDBOX_WORKSPACE, '--clearenv');
  for (const [k, v] of Object.entries(options.env)) args.push('--setenv', k, v);
  args.push('--', ...options.command);
  return args;
}
