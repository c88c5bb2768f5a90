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
