/**
 * Where a user's module failed to parse. Node 20 gives a CommonJS SyntaxError a stack that begins with
 * `file:line` and a caret under the offending text, but an ES module's only names Node's loader
 * (`at compileSourceTextModule …`): `--workflows bad.mjs` said `Unexpected identifier 'here'` and
 * nothing more. For those, `node --check` is asked about the file's source (on the failure path only),
 * then about the files it imports by a relative path, and theirs: the error may lie in one of them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Files asked about at most: each is one `node --check`. */
const MAX_FILES = 50;
/** The relative specifiers of `import … from './x.mjs'`, `export … from '../y.js'` and `import './z.js'`. */
const RELATIVE_IMPORT = /(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"\n]+)['"]/g;

/** The files `source` (the text of `file`) imports by a relative path. */
function importsOf(file: string, source: string): string[] {
  return [...source.matchAll(RELATIVE_IMPORT)].map((m) => resolve(dirname(file), m[1] as string));
}

/** `path:line:column` of `err` in `file` when `node --check` finds the same error there. */
function checkFile(err: SyntaxError, file: string, source: Buffer): string | undefined {
  const inputType = file.endsWith('.cjs') ? 'commonjs' : 'module';
  const check = spawnSync(process.execPath, [`--input-type=${inputType}`, '--check'], { input: source, encoding: 'utf8', timeout: 10_000 });
  if (!check.stderr?.includes(`SyntaxError: ${err.message}`)) return undefined;
  return locationIn(check.stderr, file);
}

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
 * kept only when it reports the same error, in `file` or in a module it imports.
 */
export function syntaxErrorLocation(err: unknown, file: string): string | undefined {
  if (!(err instanceof SyntaxError)) return undefined;
  const fromStack = locationIn(String(err.stack), file);
  if (fromStack) return fromStack;
  // The module, then the modules it imports, breadth first: the first that fails the same way.
  const queue = [file];
  const seen = new Set(queue);
  for (let n = 0; n < queue.length && n < MAX_FILES; n++) {
    const next = queue[n] as string;
    let source: Buffer;
    try {
      source = readFileSync(next);
    } catch {
      continue;
    }
    const at = checkFile(err, next, source);
    if (at) return at;
    for (const imported of importsOf(next, source.toString('utf8')))
      if (!seen.has(imported)) {
        seen.add(imported);
        queue.push(imported);
      }
  }
  return undefined;
}
