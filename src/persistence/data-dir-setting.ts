/**
 * An embedded store's path as written, before it is used: `~` and `$VARIABLE` are a shell's to expand, and
 * a shell expands them only where they stand unquoted on its command line. A `.env` file, a compose
 * `env_file` or a systemd unit passes them through as they are, and `RMAPP_DATA_DIR='~/rmstore'` made a
 * folder named `~` in the current directory, its store inside (`$HOME/rmstore` likewise a folder named
 * `$HOME`) — found by an outside tester, the store then not where the user looked for it.
 */
import { homedir } from 'node:os';
import { configError } from './config-error.ts';

/** A first path segment `~` or `~user`. */
const TILDE = /^~([^/]*)(?=\/|$)/;
/** A leading `$NAME` or `${NAME}`. */
const VARIABLE = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))?/;

/**
 * Throws a `DATABASE_CONFIG` error when `dataDir` starts with `~` (or `~user`) as its first path segment, or
 * with `$`: naming the setting it came from (`setting`: `RMAPP_DATA_DIR` or `dataDir`) and the absolute path
 * to write instead when it is known (this user's home for `~`, the variable's value for `$NAME`).
 *
 * @example
 * checkDataDirSetting('~/rmstore', 'RMAPP_DATA_DIR'); // throws: "RMAPP_DATA_DIR is "~/rmstore": rmapp does not expand ~ …"
 */
export function checkDataDirSetting(dataDir: string, setting: string): void {
  const tilde = TILDE.exec(dataDir);
  const variable = tilde ? null : VARIABLE.exec(dataDir);
  if (!tilde && !variable) return;
  let what: string;
  let known: string | undefined;
  if (tilde) {
    what = '~';
    if (tilde[1] === '') known = homedir() + dataDir.slice(1);
  } else {
    const name = variable?.[1] ?? variable?.[2];
    what = name ? `$${name}` : '$';
    const value = name ? process.env[name] : undefined;
    if (value?.startsWith('/')) known = value + dataDir.slice(variable?.[0].length ?? 0);
  }
  throw configError(
    `${setting} is ${JSON.stringify(dataDir)}: rmapp does not expand ${what} (a shell does, only where it is unquoted; .env files, ` +
      `compose env_file and systemd do not), so it would make a folder named "${dataDir.split('/')[0]}" in ${process.cwd()}. ` +
      `Write the absolute path${known ? ` (${known})` : ''} in ${setting}.`,
  );
}
