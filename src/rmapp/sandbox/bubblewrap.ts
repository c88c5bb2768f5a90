/**
 * The bubblewrap driver (`bwrap`, Debian package `bubblewrap`): every namespace unshared (user, pid,
 * network, ipc, uts, cgroup), no capabilities, a new session (no terminal injection), killed with
 * the service. The host's system directories are read-only; /etc only in the few files programs
 * need to run (no shadow, no service configuration); no /home, /root, /srv, /var or the service's
 * directory. The workspace is writable at /workspace except its `.git`, which is read-only so the
 * sandbox cannot plant hooks or configuration that the service's git (outside) would run.
 */
import { existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';

/** Where the workspace is inside the sandbox (the container driver uses the same). */
export const SANDBOX_WORKSPACE = '/workspace';
/** Where the egress proxy's socket directory is inside the sandbox. */
export const SANDBOX_RUN_DIR = '/run/rmapp';

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const ETC_FILES = [
  '/etc/alternatives',
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/pki',
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/localtime',
  '/etc/passwd',
  '/etc/group',
  '/etc/mime.types',
];

/** The system: read-only. */
function systemArgs(): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    if (!existsSync(dir)) continue;
    const st = lstatSync(dir);
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  for (const file of ETC_FILES) args.push('--ro-bind-try', file, file);
  return args;
}

/**
 * Node's own installation when it is not under /usr (nvm, /opt/node): its `bin` and
 * `lib/node_modules` (npm), never the directory around them, which may be a home directory.
 */
function nodeArgs(): string[] {
  const bin = dirname(process.execPath);
  if (SYSTEM_DIRS.some((d) => bin === d || bin.startsWith(`${d}/`))) return [];
  const modules = join(dirname(bin), 'lib', 'node_modules');
  const nodeInstall = basename(bin) === 'bin' && existsSync(join(modules, 'npm'));
  return nodeInstall ? ['--ro-bind', bin, bin, '--ro-bind', modules, modules] : ['--ro-bind', process.execPath, process.execPath];
}

/** Read-only host paths the operator or the command names (after /tmp is made, so they can live there). */
function namedArgs(extra: readonly string[], argv: readonly string[] | null): string[] {
  const args: string[] = [];
  for (const path of extra) args.push('--ro-bind-try', path, path);
  // The operator's command may name its own script (`node /opt/agent/run.mjs`): that file, nothing around it.
  for (const arg of argv ?? [])
    if (isAbsolute(arg) && existsSync(arg) && statSync(arg).isFile() && !arg.startsWith('/usr/')) args.push('--ro-bind', arg, arg);
  return args;
}

/** The `bwrap` argv (without the program) that runs `command` in `workspace`. */
export function bubblewrapArgs(options: {
  workspace: string;
  command: readonly string[];
  readOnlyPaths: readonly string[];
  /** Size of the private /tmp. */
  tmpBytes: number;
  /** The egress proxy's socket directory on the host, when the network is an allowlist. */
  runDir?: string | undefined;
  /** Host files `command` names are visible read-only (the operator's commands); default true. */
  bindArgvFiles?: boolean | undefined;
  /** What starts `command` inside (index.ts: die-with-parent.ts `EXEC_CHECK`); no host file of it is bound. */
  launcher?: readonly string[] | undefined;
}): string[] {
  const args = [
    '--unshare-all',
    // No user namespace inside: in one of its own the command held every capability over its files —
    // it set file capabilities (`unshare -Ur setcap cap_dac_override+ep`) that the host honoured for
    // anyone, since the sandbox's user is the service's own user outside.
    '--unshare-user',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--uid',
    '1000',
    '--gid',
    '1000',
    '--hostname',
    'rmapp-sandbox',
    ...systemArgs(),
    ...nodeArgs(),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    // /tmp is memory: bounded, or a command could fill the host's memory through it.
    '--size',
    String(options.tmpBytes),
    '--tmpfs',
    '/tmp',
    '--dir',
    '/tmp/home',
    ...namedArgs(options.readOnlyPaths, options.bindArgvFiles === false ? null : options.command),
    '--bind',
    options.workspace,
    SANDBOX_WORKSPACE,
  ];
  if (existsSync(join(options.workspace, '.git'))) args.push('--ro-bind', join(options.workspace, '.git'), `${SANDBOX_WORKSPACE}/.git`);
  if (options.runDir) args.push('--bind', options.runDir, SANDBOX_RUN_DIR);
  // The sandbox's own root (a tmpfs holding the mount points) is read-only too: only /workspace and /tmp take writes.
  // The environment is bwrap's own, which the service builds clean: values never appear in argv (`ps`).
  args.push('--remount-ro', '/', '--chdir', SANDBOX_WORKSPACE, '--', ...(options.launcher ?? []), ...options.command);
  return args;
}
