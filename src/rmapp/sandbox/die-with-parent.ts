/**
 * {@link dieWithParent}: the `none` and `container` drivers' answer to bubblewrap's
 * `--die-with-parent`. A command the service starts, and everything that command starts, must end
 * when the service ends — a SIGKILLed or crashed service too. Otherwise the agent of a run that another
 * worker took back goes on beside the new one: writing to a workspace, pushing, spending tokens.
 *
 * What holds, and why this way:
 * - `setpriv --pdeathsig` (util-linux) alone would kill the command but not its children: the kernel
 *   clears the parent-death signal in every forked child, so `sh -c 'sleep 1000 & wait'` left the
 *   sleep running. Nor can the service kill a process group once it is dead itself.
 * - So a small guard (bash, a few MB, no Node start-up per command) stands between the service and the
 *   command. runCommand starts it as the leader of a new session and process group; the command and
 *   its children stay in that group. The guard gets the parent-death signal (SIGUSR1: runCommand
 *   itself only sends TERM and KILL to the group) and then removes the container, if any, and
 *   SIGKILLs the whole group, itself included. A service that died before the signal was armed is
 *   caught by the guard's `$PPID` no longer being the service. (Strictly, the signal comes when the
 *   thread that spawned the guard ends: runCommand spawns on the main thread, which ends with the
 *   process; a worker thread that spawned one would take its commands with it when it ended.)
 * - At a normal end (success, failure, and the timeout or cancel that runCommand signals to the group)
 *   the guard, once the command has exited, SIGKILLs whatever is left in the group — a server a test
 *   left running in the background, its stdio redirected away — and only then exits with the command's
 *   status, so nothing of the tree outlives the step even if the service dies the next moment.
 *   runCommand's `killGroupOnExit` kills the group again when the guard exits (a command that killed
 *   its guard). The guard ignores the group's SIGTERM (a trap, reset in the command), so a command
 *   given a grace period keeps it.
 * - A process that leaves the group on purpose (`setsid`) is not followed: the `none` driver is for
 *   trusted commands only; bubblewrap's pid namespace and a container's follow everything.
 *
 * A command killed by a signal ends the guard with 128 + its number (as bubblewrap reports it).
 *
 * Cost, measured on the 2-core development machine (~130 processes): `true` through the `none` driver
 * took 29.7 ms against 2.3 ms started bare, ~8 ms of it the guard's one pass over /proc at the end
 * (more on a host with thousands of processes). Sandboxed commands are agent sessions and test runs of
 * minutes; a Node guard would have cost a Node start-up and ~40 MB per command.
 */

/**
 * The guard's script (no untrusted text in it; the command is in its arguments): `$1` the service's
 * pid, `$2` the number of words of the clean-up command that follow, then the command. The command
 * runs through `env`, which drops the variables bash adds (`_`, `SHLVL`, `PWD`): its environment is
 * the one built for it. A command that cannot be found is said on stderr as the bubblewrap driver's
 * forwarder says it, and becomes COMMAND_NOT_RUNNABLE (sandbox/index.ts `notRunnable`).
 */
const GUARD = [
  'svc=$1; n=$2; shift 2; cleanup=("${@:1:$n}"); shift "$n"',
  'stop() { if [ "$n" -gt 0 ]; then "${cleanup[@]}" </dev/null >/dev/null 2>&1; fi; kill -KILL 0; }',
  // SIGKILLs the other processes of this group that still run; succeeds when there was one. Field 5 of
  // `stat` is the group; the name before it, in parentheses, may hold anything: read after the last ") ".
  'kill_others() {',
  '  local f s p a found=1',
  '  for f in /proc/[0-9]*/stat; do',
  '    s=; read -r -d "" s 2>/dev/null <"$f"; [ -n "$s" ] || continue',
  '    p=${f#/proc/}; p=${p%/stat}; [ "$p" = "$$" ] && continue',
  '    a=(${s##*") "})',
  '    if [ "${a[2]}" = "$$" ] && [ "${a[0]}" != Z ]; then kill -KILL "$p" 2>/dev/null; found=0; fi',
  '  done',
  '  return $found',
  '}',
  'trap stop USR1',
  'trap : TERM',
  '[ "$PPID" = "$svc" ] || stop',
  'command -v -- "$1" >/dev/null || { echo "rmapp sandbox: cannot run $1: not found" >&2; exit 127; }',
  // A background command of a shell without job control starts with SIGINT and SIGQUIT ignored, which
  // its own children would inherit (a repository's test of its Ctrl-C handling would fail): the subshell restores them.
  '(trap - INT QUIT; exec /usr/bin/env -u _ -u SHLVL -u PWD "$@") <&0 &',
  'c=$!',
  // From here the guard has nothing to say: bash would report a job killed by a signal (`line 19: 123
  // Segmentation fault ( trap - INT QUIT; exec … )`) on its stderr, which is the command's, and a write
  // to a pipe whose reader (the service) has died ends the guard by SIGPIPE, in the middle of its work.
  'exec >/dev/null 2>&1',
  // `wait` returns early when the trapped TERM comes; the status is the one of the wait that reaped the command.
  'while :; do wait "$c"; status=$?; kill -0 "$c" 2>/dev/null || break; done',
  // A killed process may take a moment to go: a few passes, each killing what the last left (or forked).
  'for pass in 1 2 3 4 5 6 7 8 9 10; do kill_others || break; done',
  'exit "$status"',
].join('\n');

/**
 * `argv` run so that it and every process it starts die with this process (see the module's
 * comment). `cleanup` runs first when this process dies: `docker rm -f <name>`, since a container
 * lives in the daemon's process tree, not in the client's. Start the result with runCommand's
 * `killGroupOnExit`.
 *
 * @example
 * await runCommand(dieWithParent(['npm', 'test']), { cwd: ws, env, inheritEnv: false, program: 'npm', killGroupOnExit: true });
 */
export function dieWithParent(argv: readonly string[], options: { cleanup?: readonly string[] } = {}): string[] {
  const cleanup = options.cleanup ?? [];
  return [
    'setpriv',
    '--pdeathsig',
    'USR1',
    '--',
    '/bin/bash',
    '-c',
    GUARD,
    'rmapp-guard',
    String(process.pid),
    String(cleanup.length),
    ...cleanup,
    ...argv,
  ];
}
