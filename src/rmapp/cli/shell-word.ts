/**
 * Commands the CLI prints for the user to run, written so that pasting them works whatever the run id:
 * an id starting with `-` was read by the option parser as an option (`rmapp runs show -lead`: "unknown
 * option", an outside tester), and one holding a space or a quote was split or cut by the shell.
 */

/** `word` as a POSIX shell reads it back: as it is when it holds only characters no shell treats specially, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9._:@%+=,/-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * `rmapp runs <subcommand>` for the run `id`, with `options` (already shell words) and `rest` (what follows
 * the id: an event's JSON). An id starting with `-` comes after `--`, which ends the options, so the
 * options go before it there: `rmapp runs retry --drop-signal -- -lead`.
 *
 * @example
 * runsCommand('show', '-lead'); // "rmapp runs show -- -lead"
 * runsCommand('retry', 'r-1', { options: '--drop-signal' }); // "rmapp runs retry r-1 --drop-signal"
 */
export function runsCommand(subcommand: string, id: string, { options = '', rest = '' }: { options?: string; rest?: string } = {}): string {
  const after = rest ? ` ${rest}` : '';
  if (id.startsWith('-')) return `rmapp runs ${subcommand}${options ? ` ${options}` : ''} -- ${shellWord(id)}${after}`;
  return `rmapp runs ${subcommand} ${shellWord(id)}${after}${options ? ` ${options}` : ''}`;
}

/** ` --workflows <module>` when this command line gave one (set by main.ts), else empty. */
let workflowsFlag = '';

/**
 * Remembers the `--workflows` module typed on this command line, for {@link rmappCommand}. Told to go on
 * with `rmapp worker` after `rmapp --workflows ./workflow.ts start order … --wait`, a user pasted a worker
 * of the built-in registry, which does not register `order` and left the run waiting without a word (an
 * outside tester). One given through `RMAPP_WORKFLOWS` needs nothing: the next command reads it too.
 */
export function rememberWorkflowsFlag(module: string | undefined): void {
  workflowsFlag = module ? ` --workflows ${shellWord(module)}` : '';
}

/** `rmapp <command>` as the user can paste it: with the `--workflows` module of this command line, if any. */
export function rmappCommand(command: string): string {
  return `rmapp${workflowsFlag} ${command}`;
}
