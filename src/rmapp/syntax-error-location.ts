/**
 * Where a user's module failed to parse. Node 20 gives a CommonJS SyntaxError a stack that begins with
 * `file:line` and a caret under the offending text, but an ES module's only names Node's loader
 * (`at compileSourceTextModule …`): `--workflows bad.mjs` said `Unexpected identifier 'here'` and
 * nothing more. For those, `node --check` is asked about the file's source (on the failure path only).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `path:line:column` of the first `path:line` / source line / caret block of `text`, with `stdinIs` for `[stdin]`. */
function locationIn(text: string, stdinIs: string): string | undefined {
  const [head, , caret] = text.split('\n');
  const m = /^(.+):(\d+)$/.exec(head ?? '');
  if (!m?.[1] || !m[2]) return undefined;
  const where = m[1] === '[stdin]' ? stdinIs : m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
  const column = caret?.indexOf('^') ?? -1;
  return `${where}:${m[2]}${column >= 0 ? `:${column + 1}` : ''}`;
}

/**
 * `path:line:column` of the syntax error `err` thrown importing `file` (a JavaScript module), or
 * undefined when it is no SyntaxError or the place cannot be found. A location from `node --check` is
 * kept only when it reports the same error (the error may lie in a module `file` imports).
 */
export function syntaxErrorLocation(err: unknown, file: string): string | undefined {
  if (!(err instanceof SyntaxError)) return undefined;
  const fromStack = locationIn(String(err.stack), file);
  if (fromStack) return fromStack;
  let source: Buffer;
  try {
    source = readFileSync(file);
  } catch {
    return undefined;
  }
  const check = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: source, encoding: 'utf8', timeout: 10_000 });
  if (!check.stderr?.includes(`SyntaxError: ${err.message}`)) return undefined;
  return locationIn(check.stderr, file);
}
