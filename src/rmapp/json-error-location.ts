/**
 * Where a JSON text stops being JSON, as `line:column`: V8's JSON.parse names a place only as a
 * character offset (`… in JSON at position 36`), or not at all, quoting the text around it over several
 * lines (`Unexpected token '}', "…\n}" is not valid JSON`). A configuration file or an `@FILE` input is
 * edited by line, so the error is named by line and column, on one line.
 */

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

/** Offset of the first character that makes `text` not JSON (text.length: it ended too soon), or -1 when it is JSON. */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const space = () => {
    while (i < text.length && WHITESPACE.has(text[i] as string)) i++;
  };
  const literal = (word: string): boolean => {
    for (const c of word) if (text[i++] !== c) return (i--, false);
    return true;
  };
  const digits = (): boolean => {
    const start = i;
    while (/[0-9]/.test(text[i] ?? '')) i++;
    return i > start;
  };
  const number = (): boolean => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (!digits()) return false;
    if (text[i] === '.' && (i++, !digits())) return false;
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!digits()) return false;
    }
    return true;
  };
  const string = (): boolean => {
    i++; // the opening quote
    while (i < text.length) {
      const c = text[i] as string;
      if (c === '"') return (i++, true);
      if (c < ' ') return false;
      if (c === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) return (i++, false);
          i += 5;
        } else if ('"\\/bfnrt'.includes(text[i] ?? 'x') && i < text.length) i++;
        else return false;
      } else i++;
    }
    return false;
  };
  const value = (): boolean => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      space();
      if (text[i] === '}') return (i++, true);
      for (;;) {
        space();
        if (text[i] !== '"' || !string()) return false;
        space();
        if (text[i] !== ':') return false;
        i++;
        if (!value()) return false;
        space();
        if (text[i] === '}') return (i++, true);
        if (text[i] !== ',') return false;
        i++;
      }
    }
    if (c === '[') {
      i++;
      space();
      if (text[i] === ']') return (i++, true);
      for (;;) {
        if (!value()) return false;
        space();
        if (text[i] === ']') return (i++, true);
        if (text[i] !== ',') return false;
        i++;
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    return number();
  };
  if (!value()) return Math.min(i, text.length);
  space();
  return i < text.length ? i : -1;
}

/** `line:column` (both from 1) of the character at `offset` of `text`. */
export function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/**
 * What is wrong with the JSON `text` that JSON.parse refused with `err`, on one line: `4:1: Unexpected
 * token '}'`, or `the text ends too soon` at its end.
 */
export function jsonErrorAt(text: string, err: unknown): string {
  const offset = jsonErrorOffset(text);
  const message = (err instanceof Error ? err.message : String(err))
    .replace(/, (\.\.\.)?".*" is not valid JSON$/s, '')
    .replace(/ (in|after) JSON at position \d+.*$/s, '')
    .replace(/\s*[\r\n]+\s*/g, ' ');
  if (offset < 0) return message;
  return `${lineColumn(text, offset)}: ${offset >= text.length ? 'the text ends too soon' : message}`;
}
