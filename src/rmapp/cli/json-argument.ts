/**
 * The JSON a command takes as an argument (`rmapp start`'s input, `rmapp runs send`'s event): the text
 * itself, `-` for standard input, or `@path` for a file. An argument is bounded by the shell's limit on
 * one argument (128 KiB on Linux) while the store takes an input of up to 1 MiB (README "Configuration",
 * `limits`): larger ones come from a file or a pipe. A mistake names the file it is in.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WorkflowError } from '../../state_machine/errors.ts';
import { terminalSafe } from './format.ts';
import { inexactNumber, inexactNumberMessage } from '../json-numbers.ts';

/** What the JSON is, with an example of one to show when it is not JSON. */
export interface JsonArgumentKind {
  /** `input`, `event`. */
  what: string;
  /** One, as typed in a shell: `'{"orderId":"o-1"}'`. */
  example: string;
}

const badJson = (message: string) => new WorkflowError(message, { code: 'BAD_JSON', category: 'validation' });

/** All of standard input, as text. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The source of `argument` in words (`standard input`, `the file /x/in.json`) and its text. */
async function textOf(argument: string, what: string): Promise<{ from: string | null; text: string }> {
  if (argument === '-') return { from: 'standard input', text: await readStdin() };
  if (!argument.startsWith('@')) return { from: null, text: argument };
  const file = resolve(argument.slice(1));
  try {
    return { from: `the file ${file}`, text: await readFile(file, 'utf8') };
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw badJson(
      `The ${what} file ${file} cannot be read (${reason}): fix the path after @, or pass the JSON itself or - for standard input.`,
    );
  }
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
