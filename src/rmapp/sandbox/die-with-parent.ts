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
 *   its children stay in that session. The guard gets the parent-death signal
 *   ({@link GUARD_STOP_SIGNAL}: runCommand only sends TERM and KILL to the group) and then SIGKILLs the
 *   whole session, then removes the container, if any, and goes last. A service that died before the
 *   signal was armed is caught by the guard's `$PPID` no longer being the service. (Strictly, the
 *   signal comes when the thread that spawned the guard ends: runCommand spawns on the main thread,
 *   which ends with the process; a worker thread that spawned one would take its commands with it
 *   when it ended.)
 * - The session, not the group: GNU `timeout` moves itself and what it runs to a group of its own
 *   (to kill that group at its deadline), and so does a shell with job control (`set -m`) with each
 *   background job. Following the group only, `timeout 600 npm test` — an ordinary test command —
 *   outlived the step's end, its timeout or cancel, and a SIGKILLed worker. Leaving the group is no
 *   way out of the session; leaving the session takes `setsid`, which is on purpose.
 * - At a normal end (success, failure, timeout, cancel) the guard, once the command has exited,
 *   SIGKILLs whatever is left in the session — a server a test left running in the background, its
 *   stdio redirected away — and only then exits with the command's status, so nothing of the tree
 *   outlives the step even if the service dies the next moment. runCommand's `killGroupOnExit` kills
 *   the group again when the guard exits (a command that killed its guard).
 * - Stopping: runCommand's SIGTERM reaches the guard's group; the guard passes it on to what moved to
 *   other groups of the session and goes on waiting (a trap, reset in the command), so a command given
 *   a grace period keeps it. When the grace period ends runCommand sends {@link GUARD_STOP_SIGNAL}
 *   (its `stopSignal`), not SIGKILL: a SIGKILL to the group would kill the guard first and leave the
 *   other groups running. The group's SIGKILL follows a grace period later if the guard is still there.
 * - A process that leaves the session on purpose (`setsid`) is not followed, and a command that stops
 *   (SIGSTOP) or kills its guard is no longer tied to the service's death (while the service lives,
 *   runCommand still kills the group when the guard ends): the `none` driver is for trusted commands
 *   only; bubblewrap's pid namespace and a container's follow everything, and a container's command
 *   cannot reach the guard.
 *
 * A command killed by a signal ends the guard with 128 + its number (as bubblewrap reports it).
 *
 * Cost, measured on the 2-core development machine (~130 processes): `true` through the `none` driver
 * took 29.7 ms against 2.3 ms started bare, ~8 ms of it the guard's one pass over /proc at the end
 * (more on a host with thousands of processes). Sandboxed commands are agent sessions and test runs of
 * minutes; a Node guard would have cost a Node start-up and ~40 MB per command.
 */

/**
 * What tells the guard to kill everything and go: the parent-death signal it is started with, and what
 * runCommand sends it when a stopped command's grace period ends (`stopSignal`).
 */
export const GUARD_STOP_SIGNAL = 'SIGUSR1';

/**
 * How long the guard's clean-up command (`docker rm -f`) may take by default before it is killed: a
 * daemon that does not answer must not hold the guard, or the step, for ever.
 */
export const CLEANUP_TIMEOUT_MS = 30_000;

/** Why a program named in a "cannot run" diagnosis could not be started. */
const NOT_EXECUTABLE = 'no executable file of that name (on the PATH, for a name without /)';

/**
 * The guard's script (no untrusted text in it; the command is in its arguments): `$1` the service's
 * pid, `$2` the clean-up command's deadline in seconds, `$3` the number of words of the clean-up
 * command that follow, then the command. bash's own
 * `exec` starts the command, once the variables bash adds (`_`, `SHLVL`, `PWD`) are no longer
 * exported: its environment is the one built for it. Not `env`, which reads its first arguments as
 * its own (`./tests=fast.sh echo` set a variable and ran `echo`; `-S/x` split `/x` into a command
 * line). A command that is no executable file on the PATH (nor one, for a name with `/`) — a shell
 * built-in such as `cd`, one of the guard's functions — is said on descriptor 3 (runCommand's
 * `diagnostics`), which the guard closes before the command starts, and becomes COMMAND_NOT_RUNNABLE
 * (sandbox/index.ts `notRunnable`), as under bubblewrap ({@link EXEC_CHECK}).
 */
const GUARD = [
  'svc=$1; deadline=$2; n=$3; shift 3; cleanup=("${@:1:$n}"); shift "$n"',
  // signal_session SIGNAL [outside]: sends SIGNAL to the other processes of this session (the guard leads
  // it), or only to those outside the guard's own group; succeeds when one of them still ran. Fields 5
  // and 6 of `stat` are the group and the session; the name before them, in parentheses, may hold
  // anything: read after the last ") ". A zombie is signalled too (its threads may still run) but not
  // counted: it waits for its parent, not for this.
  'signal_session() {',
  '  local f s p a found=1',
  '  for f in /proc/[0-9]*/stat; do',
  '    s=; read -r -d "" s 2>/dev/null <"$f"; [ -n "$s" ] || continue',
  '    p=${f#/proc/}; p=${p%/stat}; [ "$p" = "$$" ] && continue',
  '    a=(${s##*") "})',
  '    [ "${a[3]}" = "$$" ] || continue',
  '    [ -n "$2" ] && [ "${a[2]}" = "$$" ] && continue',
  '    kill -"$1" "$p" 2>/dev/null',
  '    [ "${a[0]}" = Z ] || found=0',
  '  done',
  '  return $found',
  '}',
  // A killed process may take a moment to go: a few passes, each killing what the last left (or forked).
  'kill_session() { local pass; for pass in 1 2 3 4 5 6 7 8 9 10; do signal_session KILL || break; done; }',
  // Once stopping, a second USR1 or a TERM changes nothing (a no-op trap: the clean-up command gets the
  // default). The command first, then the clean-up: a `docker run` client still alive while `rm -f` ran
  // could create its container after the daemon had answered that there was none, and it ran on.
  // clean_up: the clean-up command, for $deadline seconds at most — a daemon that does not answer held the
  // guard (and, while the service lived, the step) for ever. Its output is a pipe read until its end or
  // the deadline (bash's `read -t`; `$!` is the command itself, not yet reaped while it runs); then it
  // is killed, and the guard says so on descriptor 4, the service's own stderr, which outlives the service.
  'clean_up() {',
  '  local k',
  '  exec 5< <(exec "${cleanup[@]}" </dev/null 2>/dev/null); k=$!',
  '  read -r -t "$deadline" -d "" -u 5 _ 2>/dev/null',
  '  [ $? -gt 128 ] || return 0',
  '  kill -KILL "$k" 2>/dev/null',
  '  echo "rmapp sandbox: \\`${cleanup[*]}\\` did not finish within $deadline s when the command under it was stopped (does the daemon answer?): it was killed, and ${cleanup[-1]} may be left running — run \\`${cleanup[*]}\\` once the daemon answers." >&4 2>/dev/null',
  '}',
  'stop() { trap : USR1 TERM; kill_session; if [ "$n" -gt 0 ]; then clean_up; fi; kill -KILL 0; }',
  'trap stop USR1',
  // The group has the TERM already (runCommand signals it); what moved to a group of its own gets it from here.
  'trap "signal_session TERM outside" TERM',
  '[ "$PPID" = "$svc" ] || stop',
  // Said on descriptor 3 (runCommand's `diagnostics`), never on stderr, and closed before the command
  // starts: only the guard can say "cannot run" (a command printing those words on its stderr was taken at its word).
  `type -P -- "$1" >/dev/null || { echo "cannot run $1: ${NOT_EXECUTABLE}" >&3; exit 127; } 2>/dev/null`,
  'exec 3>&-',
  // A background command of a shell without job control starts with SIGINT and SIGQUIT ignored, which
  // its own children would inherit (a repository's test of its Ctrl-C handling would fail): the subshell restores them.
  // Descriptor 4 (the service's stderr, for clean_up) is the guard's, never the command's.
  '(trap - INT QUIT; export -n _ SHLVL PWD OLDPWD; exec -- "$@") <&0 4>&- &',
  'c=$!',
  // From here the guard has nothing to say: bash would report a job killed by a signal (`line 19: 123
  // Segmentation fault ( trap - INT QUIT; exec … )`) on its stderr, which is the command's, and a write
  // to a pipe whose reader (the service) has died ends the guard by SIGPIPE, in the middle of its work.
  'exec >/dev/null 2>&1',
  // `wait` returns early when the trapped TERM comes; the status is the one of the wait that reaped the command.
  'while :; do wait "$c"; status=$?; kill -0 "$c" 2>/dev/null || break; done',
  'kill_session',
  'exit "$status"',
].join('\n');

/**
 * The signals a command may send its own process group, which {@link EXEC_CHECK} (in that group) must
 * outlive: all that end or stop a process by default and can be caught. Inside the sandbox the group was
 * bwrap's pid 1 and the command, and pid 1 ignores what it has no handler for.
 */
const GROUP_SIGNALS = 'HUP INT QUIT ALRM TERM USR1 USR2 PIPE TSTP TTIN TTOU VTALRM PROF XCPU XFSZ';

/**
 * The bubblewrap driver's last step inside the sandbox (bash; no untrusted text in it): `$1` is the
 * command's program, the rest what to run (the command, or the network forwarder in front of it).
 * A program that is no executable file there is said on descriptor 3, as the guard says it, and
 * descriptor 3 is closed before what runs starts: nothing inside the sandbox holds it then (bwrap's
 * own pid 1 closes what it inherits), so a command cannot say "cannot run" in rmapp's name — bwrap's
 * own `execvp` failure, on stderr, could be printed by any command. The command starts in a subshell,
 * as under the guard: bash's own `exec` at the top level exports `SHLVL` to what it runs, and the
 * command's environment is the one built for it. This bash waits for it, silent (bash reports a job
 * killed by a signal on its stderr, which is the command's), outlives the signals the command sends its
 * own process group ({@link GROUP_SIGNALS}), and exits with its status (128 + the signal's number for a
 * signal, as bwrap reports one).
 */
export const EXEC_CHECK = [
  `type -P -- "$1" >/dev/null || { echo "cannot run $1: ${NOT_EXECUTABLE}" >&3; exit 127; } 2>/dev/null`,
  'exec 3>&-',
  'shift',
  // The command shares this bash's process group: its `kill 0` (`kill -TERM 0`, `process.kill(0, …)`,
  // a script's clean-up of its children) reached this bash too, which died, and bwrap ended the sandbox
  // with 143 under a command that had trapped the signal and went on. Ignored here, and reset to the
  // default in the subshell, so the command's dispositions are its own. Ignored, not caught: a caught
  // signal interrupts `wait`, and bash 5.2's `wait` for a command it reaped meanwhile gave -1 (255).
  `trap '' ${GROUP_SIGNALS}`,
  `(trap - ${GROUP_SIGNALS}; export -n _ SHLVL PWD OLDPWD; exec -- "$@") <&0 &`,
  'exec </dev/null >/dev/null 2>&1',
  'wait "$!"',
].join('\n');

/**
 * `argv` run so that it and every process it starts die with this process (see the module's
 * comment). `cleanup` runs when this process dies, once the command is dead (a client killed after it
 * could still create what `cleanup` removes): `docker rm -f <name>`, since a container lives in the
 * daemon's process tree, not in the client's. `cleanup` gets `cleanupTimeoutMs` (default
 * {@link CLEANUP_TIMEOUT_MS}); then it is killed and the guard writes on its descriptor 4 what may be
 * left. Start the result with runCommand's `killGroupOnExit`, `stopSignal: GUARD_STOP_SIGNAL`,
 * `diagnostics` (where the guard says that the command cannot be run) and, with a `cleanup`,
 * `serviceStderr` (descriptor 4).
 *
 * @example
 * await runCommand(dieWithParent(['npm', 'test']), {
 *   cwd: ws, env, inheritEnv: false, program: 'npm', killGroupOnExit: true, stopSignal: GUARD_STOP_SIGNAL, diagnostics: true,
 * });
 */
export function dieWithParent(
  argv: readonly string[],
  options: { cleanup?: readonly string[]; cleanupTimeoutMs?: number | undefined } = {},
): string[] {
  const cleanup = options.cleanup ?? [];
  const deadline = (options.cleanupTimeoutMs ?? CLEANUP_TIMEOUT_MS) / 1000;
  return [
    'setpriv',
    '--pdeathsig',
    GUARD_STOP_SIGNAL.slice('SIG'.length),
    '--',
    '/bin/bash',
    '-c',
    GUARD,
    'rmapp-guard',
    String(process.pid),
    String(Math.max(0.001, deadline)),
    String(cleanup.length),
    ...cleanup,
    ...argv,
  ];
}
