/**
 * The JSON a command takes as an argument (`rmapp start`'s input, `rmapp runs send`'s event): the text
 * itself, `-` for standard input, or `@path` for a file. An argument is bounded by the shell's limit on
 * one argument (128 KiB on Linux) while the store takes an input of up to 1 MiB (README "Configuration",
 * `limits`): larger ones come from a file or a pipe. A mistake names the file it is in.
 */
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WorkflowError } from '../../state_machine/errors.ts';
import { terminalSafe } from './format.ts';
import { inexactNumber, inexactNumberMessage } from '../json-numbers.ts';
import { firstInvalidByte } from '../utf8.ts';

/** What the JSON is, with an example of one to show when it is not JSON. */
export interface JsonArgumentKind {
  /** `input`, `event`. */
  what: string;
  /** One, as typed in a shell: `'{"orderId":"o-1"}'`. */
  example: string;
}

const badJson = (message: string) => new WorkflowError(message, { code: 'BAD_JSON', category: 'validation' });

/**
 * The most bytes read from a file or standard input: 16 times the largest input the store takes (1 MiB),
 * room for JSON laid out with whitespace. Reading stops past it: a 400 MB pipe was read whole (1.2 GB of
 * memory), and `@/dev/zero` never ended.
 */
export const MAX_JSON_ARGUMENT_BYTES = 16 * 1024 * 1024;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes of `stream`, or null once they pass {@link MAX_JSON_ARGUMENT_BYTES} (the stream is left unread). */
async function boundedBytes(stream: AsyncIterable<Buffer | string>): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > MAX_JSON_ARGUMENT_BYTES) return null;
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

/**
 * `bytes` as text: strict UTF-8 (a byte that is not is named by its offset), without a leading byte order
 * mark (an editor's; JSON.parse refused it as `Unexpected token '\uFEFF'`).
 */
function utf8Text(bytes: Buffer, what: string, from: string): string {
  try {
    return STRICT_UTF8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw badJson(`The ${what} in ${from} is not UTF-8 text (byte ${firstInvalidByte(bytes)} is not): save it as UTF-8.`);
  }
}

/** The text of `stream` (standard input, a file) named `from`. */
async function streamText(stream: AsyncIterable<Buffer | string>, what: string, from: string): Promise<string> {
  const bytes = await boundedBytes(stream);
  if (!bytes)
    throw badJson(
      `The ${what} in ${from} is larger than ${MAX_JSON_ARGUMENT_BYTES / 1024 / 1024} MiB, which is all rmapp reads (a run's input is stored up to 1 MiB by default): send a reference (a file name, a URL) instead of the data.`,
    );
  return utf8Text(bytes, what, from);
}

/** The source of `argument` in words (`standard input`, `the file /x/in.json`) and its text. */
async function textOf(argument: string, what: string): Promise<{ from: string | null; text: string }> {
  if (argument === '-') {
    // A terminal is read until Ctrl-D: the command waited saying nothing.
    if (process.stdin.isTTY) throw badJson(`- reads the ${what} from standard input, which is a terminal: pipe the JSON in or use @FILE.`);
    const text = await streamText(process.stdin, what, 'standard input');
    if (!text.trim()) throw badJson(`Standard input was empty: pipe the ${what}'s JSON in, or pass it as an argument or @FILE.`);
    return { from: 'standard input', text };
  }
  if (!argument.startsWith('@')) return { from: null, text: argument };
  // `@` alone resolved to the current folder (EISDIR).
  if (argument === '@')
    throw badJson(`A path is missing after @: pass @FILE (e.g. @${what}.json), the JSON itself, or - for standard input.`);
  const file = resolve(argument.slice(1));
  const from = `the file ${file}`;
  let stream: AsyncIterable<Buffer>;
  try {
    const handle = await open(file);
    stream = handle.createReadStream();
  } catch (err) {
    throw unreadable(err, what, file);
  }
  try {
    const text = await streamText(stream, what, from);
    // As standard input's: not JSON's "Unexpected end of JSON input".
    if (!text.trim()) throw badJson(`The ${what} file ${file} is empty: write the ${what}'s JSON in it, or pass the JSON itself.`);
    return { from, text };
  } catch (err) {
    if (err instanceof WorkflowError) throw err;
    throw unreadable(err, what, file);
  } finally {
    (stream as { destroy?: () => void }).destroy?.();
  }
}

/** The error for a file that cannot be opened or read (ENOENT, EISDIR, EACCES). */
function unreadable(err: unknown, what: string, file: string): WorkflowError {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return badJson(
    `The ${what} file ${file} cannot be read (${reason}): fix the path after @, or pass the JSON itself or - for standard input.`,
  );
}

/** `text` on one line, safe on a terminal: JSON.parse quotes the text around the error, and a file may hold anything. */
const oneLine = (text: string) => terminalSafe(text.replace(/\s*[\r\n]+\s*/g, ' '));

/** The value of a JSON argument: the text, `-` (standard input) or `@path` (a file). */
export async function jsonArgument(argument: string, kind: JsonArgumentKind): Promise<unknown> {
  const { what, example } = kind;
  const { from, text } = await textOf(argument, what);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (from) throw badJson(`The ${what} in ${from} is not valid JSON (${oneLine((err as Error).message)}).`);
    // The text as typed, cut: a large argument made the error as large.
    const shown = text.length > 200 ? `${text.slice(0, 200)}… (${text.length} characters)` : text;
    throw badJson(
      `${what} is not valid JSON: ${shown}. Quote it for the shell, e.g. ${example}, or pass @FILE (a file) or - (standard input).`,
    );
  }
  const inexact = inexactNumber(text);
  if (inexact) throw badJson(inexactNumberMessage(`The ${what}${from ? ` in ${from}` : ''}`, inexact));
  return value;
}
