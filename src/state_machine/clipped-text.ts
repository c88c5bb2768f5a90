/**
 * Text kept to a length by its head and its tail, with a mark saying how much was left out between them:
 * for texts that come from outside and are recorded again and again (a step's error at every attempt, an
 * agent's transcript), where the start and the end say what happened and the middle is bulk.
 *
 * The mark is the one the service's masker knows (src/rmapp/masking.ts): the text on each side of it is
 * an edge, where a secret cut in two by the clipping is masked by the piece of it that is left.
 */

/** The mark put where `chars` characters were left out. */
export const leftOutMark = (chars: number): string => `\n… ${chars} characters left out …\n`;

/**
 * `text` itself when it has at most `max` characters; else its first and last characters around a
 * {@link leftOutMark}, `max` characters in all (less a few: `max` must leave room for the mark). A cut
 * may fall between the halves of a surrogate pair: make the result storable where it is stored.
 *
 * @example
 * clipMiddle('a'.repeat(100_000), 1_000); // 470 × 'a', "\n… 99060 characters left out …\n", 470 × 'a'
 */
export function clipMiddle(text: string, max: number): string {
  if (text.length <= max) return text;
  const half = Math.floor((max - 60) / 2);
  return `${text.slice(0, half)}${leftOutMark(text.length - 2 * half)}${text.slice(text.length - half)}`;
}
