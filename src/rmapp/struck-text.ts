/**
 * Struck-through text (GitHub Flavored Markdown's `~~text~~` and `~text~`) blanked, line breaks kept:
 * an author who strikes `~~@rmapp implement~~` out has withdrawn it, and GitHub shows it crossed out.
 * Close to GFM, not exact: a run of one or two tildes opens when a non-blank follows it and closes when
 * a non-blank precedes it, pairing with the nearest open run of the same length in its paragraph (a run
 * of three or more is text, as GFM has it). A paragraph ends at a blank line and at a line that starts
 * another block ({@link BLOCK_LINE}). Linear in the text's length: each run is looked at once.
 */

/**
 * A line break before a line that starts another block — a heading, a list item, a quote, a setext
 * underline or thematic break — or after a heading's line, where a strike left open cannot go on:
 * `~~old` then `# @rmapp cancel~~` is a paragraph and a heading, and GitHub shows the heading's command,
 * not struck. The look back is tried only at a line break, over that one line: linear.
 */
const BLOCK_LINE =
  /\n(?=[ \t]{0,3}(?:#{1,6}(?:[ \t]|$)|[-+*][ \t]|\d{1,9}[.)][ \t]|>|[-=]+[ \t]*$|(?:\*[ \t]*){3,}$|(?:_[ \t]*){3,}$))|\n(?<=^[ \t]{0,3}#{1,6}(?:[ \t][^\n]*)?\n)/;

/**
 * The text without its struck-through spans (each character of them a space, line breaks kept).
 *
 * @example
 * withoutStruckText('~~@rmapp implement~~ never mind'); // → '                     never mind'
 */
export function withoutStruckText(text: string): string {
  const parts: string[] = [];
  let copied = 0;
  /** Open runs by length (1 or 2), innermost last; a paragraph's end empties both. */
  const open: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const delimiters = new RegExp(`~+|\\n[ \\t]*\\n|${BLOCK_LINE.source}`, 'gm');
  for (const m of text.matchAll(delimiters)) {
    const at = m.index ?? 0;
    if (m[0][0] !== '~') {
      open[1].length = 0;
      open[2].length = 0;
      continue;
    }
    const length = m[0].length;
    if (length > 2) continue;
    const n = length as 1 | 2;
    const before = text[at - 1];
    const after = text[at + length];
    const closes = before !== undefined && !/\s/.test(before);
    const opens = after !== undefined && !/\s/.test(after);
    const start = open[n].at(-1);
    if (closes && start !== undefined) {
      const end = at + length;
      parts.push(text.slice(copied, start), text.slice(start, end).replace(/[^\n]/g, ' '));
      copied = end;
      // What opened inside the struck span is gone with it.
      open[n].pop();
      const other = open[n === 1 ? 2 : 1];
      while (other.length && (other.at(-1) as number) > start) other.pop();
      continue;
    }
    if (opens) open[n].push(at);
  }
  parts.push(text.slice(copied));
  return parts.join('');
}
