/**
 * The index the masker (masking.ts) searches every form of every secret through at once: a text read
 * once, whatever the number of secrets (an App's minted installation tokens), and a secret added or
 * removed at the cost of its own forms.
 */
import { MASK } from '../persistence/mask-marker.ts';
import { wellFormed, type OneSecretForms } from './secret-forms.ts';

/** A form an index holds, and where it is filed. */
export interface IndexedForm {
  readonly text: string;
  /**
   * The ranks of the secrets (and forms) it is a form of, ascending, one per time it was added: the
   * least orders it among forms of its length as the list of secrets did.
   */
  readonly ranks: number[];
  /** The hash of the piece of the index's `q` characters it is filed under, and where that piece stands in it. */
  readonly hash: number;
  readonly at: number;
}

/** Longest first, then in the order of the secrets: the order the masker searches forms in. */
export const longestFirst = (a: IndexedForm, b: IndexedForm): number =>
  b.text.length - a.text.length || (a.ranks[0] as number) - (b.ranks[0] as number);

/** Up to this many forms, an index is searched form by form (`includes`), as before it existed. */
const SMALL_INDEX = 64;
const GRAM_BASE = 31;
/**
 * The bits of a hash kept as a key: a small integer, which V8 keeps unboxed — a Map keyed by full
 * 32-bit hashes boxed each, and indexing 1,000 tokens took 7× the old masker's rebuild.
 */
const KEY = 0x3fffffff;

/** `rank` put into the ascending `ranks`. */
function insertRank(ranks: number[], rank: number): void {
  let i = ranks.length;
  while (i > 0 && (ranks[i - 1] as number) > rank) i -= 1;
  ranks.splice(i, 0, rank);
}

/** The first of the ascending `ranks` above `after`, or Infinity. */
export function rankAfter(ranks: readonly number[] | undefined, after: number): number {
  if (!ranks) return Infinity;
  let lo = 0;
  let hi = ranks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((ranks[mid] as number) > after) hi = mid;
    else lo = mid + 1;
  }
  return ranks[lo] ?? Infinity;
}

/**
 * Whether a form may newly stand in a text once another form there became {@link MASK}: such an
 * occurrence overlaps the mark, so the form holds the mark's first or last character or lies inside
 * it. Those are searched in every text; the rest only where the unmasked text holds them.
 */
const nearMask = (form: string): boolean =>
  form.includes(MASK[0] as string) || form.includes(MASK[MASK.length - 1] as string) || MASK.includes(form);

/**
 * The rolling hashes of each `q` characters of `text`, in order (`out[i]` for `text.slice(i, i + q)`):
 * polynomial in {@link GRAM_BASE} modulo 2^32, so the next is the last with one character out and one
 * in; kept to their low 30 bits ({@link KEY}).
 */
function gramHashes(text: string, q: number, top: number): Int32Array {
  const n = text.length - q + 1;
  const out = new Int32Array(Math.max(0, n));
  if (n <= 0) return out;
  let h = 0;
  for (let j = 0; j < q; j += 1) h = (Math.imul(h, GRAM_BASE) + text.charCodeAt(j)) | 0;
  out[0] = h & KEY;
  for (let i = 1; i < n; i += 1) {
    h = (Math.imul(h - Math.imul(text.charCodeAt(i - 1), top), GRAM_BASE) + text.charCodeAt(i + q - 1)) | 0;
    out[i] = h & KEY;
  }
  return out;
}

/** {@link GRAM_BASE} to the power `q - 1`, modulo 2^32: what the character leaving a window of `q` weighed. */
function topWeight(q: number): number {
  let top = 1;
  for (let i = 1; i < q; i += 1) top = Math.imul(top, GRAM_BASE);
  return top;
}

const EDGE_TOP = topWeight(8);
/** The hash of `text`'s 8 characters from `at`, as {@link gramHashes} makes it. */
export function edgeHash(text: string, at: number): number {
  let h = 0;
  for (let j = at; j < at + 8; j += 1) h = (Math.imul(h, GRAM_BASE) + text.charCodeAt(j)) | 0;
  return h & KEY;
}

/**
 * Which of many strings (each of `q` characters or more) a text holds, at a cost that does not grow
 * with how many there are: each string is filed under the hash of one of its pieces of `q` characters
 * (the one fewest others are filed under, from its middle on: every `x-access-token:` Basic form
 * starts alike), and the text is read once, a rolling hash of each `q` characters tested against a bit
 * per filed hash, the strings filed under it compared where the bit is set. Searching each string
 * with `includes` cost ~1 ms a log line with 1,000 minted tokens (bench/README.md, "thirty-sixth
 * session"). Adding or removing a string costs its own length, not the index's size.
 */
class FormIndex {
  private readonly forms = new Map<string, IndexedForm>();
  private readonly byHash = new Map<number, IndexedForm[]>();
  /** The forms searched in every text ({@link nearMask}): only the values' index reads them. */
  readonly nearMask = new Set<IndexedForm>();
  private bits = new Int32Array(32);
  private bitsLog = 10;
  /** Hashes removed whose bits are still set: a false hit each, until the bits are rebuilt. */
  private stale = 0;
  private readonly top: number;

  constructor(private readonly q: number) {
    this.top = topWeight(q);
  }

  get size(): number {
    return this.forms.size;
  }

  add(text: string, rank: number): void {
    const known = this.forms.get(text);
    if (known) return insertRank(known.ranks, rank);
    const hashes = gramHashes(text, this.q, this.top);
    // From the middle on (then from the start): forms share heads (`ghs_`, an `x-access-token:` Basic
    // form's first 20 characters) and tails (`%3D`) more than middles.
    const places = hashes.length;
    const middle = (places - 1) >> 1;
    let at = middle;
    let fewest = Infinity;
    for (let k = 0; k < places && fewest > 0; k += 1) {
      const o = (middle + k) % places;
      const n = this.byHash.get(hashes[o] as number)?.length ?? 0;
      if (n < fewest) [fewest, at] = [n, o];
    }
    const form: IndexedForm = { text, ranks: [rank], hash: hashes[at] as number, at };
    this.forms.set(text, form);
    const filed = this.byHash.get(form.hash);
    if (filed) filed.push(form);
    else {
      this.byHash.set(form.hash, [form]);
      if (this.byHash.size > this.bits.length) this.rebuildBits();
      else this.mark(form.hash);
    }
    if (nearMask(text)) this.nearMask.add(form);
  }

  remove(text: string, rank: number): void {
    const form = this.forms.get(text);
    if (!form) return;
    const i = form.ranks.indexOf(rank);
    if (i >= 0) form.ranks.splice(i, 1);
    if (form.ranks.length) return;
    this.forms.delete(text);
    this.nearMask.delete(form);
    const filed = this.byHash.get(form.hash) as IndexedForm[];
    filed.splice(filed.indexOf(form), 1);
    if (filed.length) return;
    this.byHash.delete(form.hash);
    this.stale += 1;
    if (this.stale > this.byHash.size + 64) this.rebuildBits();
  }

  /** The forms `text` holds, in no particular order. */
  found(text: string): IndexedForm[] {
    if (this.forms.size <= SMALL_INDEX) {
      const out: IndexedForm[] = [];
      for (const form of this.forms.values()) if (text.includes(form.text)) out.push(form);
      return out;
    }
    const out = new Set<IndexedForm>();
    this.candidates(text, (form, start) => {
      if (!out.has(form) && text.startsWith(form.text, start)) out.add(form);
    });
    return [...out];
  }

  /**
   * Calls `visit` with each form and where it starts, for every place `text` holds one (overlapping
   * places too), in no particular order: read once by the rolling hash as {@link found} reads it, or form
   * by form (`indexOf`) for a small index.
   */
  each(text: string, visit: (form: IndexedForm, start: number) => void): void {
    if (this.forms.size <= SMALL_INDEX) {
      for (const form of this.forms.values())
        for (let at = text.indexOf(form.text); at >= 0; at = text.indexOf(form.text, at + 1)) visit(form, at);
      return;
    }
    this.candidates(text, (form, start) => {
      if (text.startsWith(form.text, start)) visit(form, start);
    });
  }

  /**
   * Reads `text` once with the rolling hash and calls `visit` with each filed form whose piece's hash is
   * at a place, and where the form would start there — unchecked: the caller compares the text. Called
   * only where the bitmap and the hash both hit, so a text that holds no secret costs no call.
   */
  private candidates(text: string, visit: (form: IndexedForm, start: number) => void): void {
    const { q, bits, byHash, top } = this;
    const n = text.length;
    if (n < q) return;
    const shift = 32 - this.bitsLog;
    let h = 0;
    for (let j = 0; j < q; j += 1) h = (Math.imul(h, GRAM_BASE) + text.charCodeAt(j)) | 0;
    for (let i = 0; ; i += 1) {
      const key = h & KEY;
      const b = Math.imul(key, 0x9e3779b1) >>> shift;
      if ((bits[b >>> 5] as number) & (1 << (b & 31))) {
        const filed = byHash.get(key);
        if (filed)
          for (const form of filed) {
            const start = i - form.at;
            if (start >= 0) visit(form, start);
          }
      }
      if (i + q >= n) break;
      h = (Math.imul(h - Math.imul(text.charCodeAt(i), top), GRAM_BASE) + text.charCodeAt(i + q)) | 0;
    }
  }

  private mark(hash: number): void {
    const b = Math.imul(hash, 0x9e3779b1) >>> (32 - this.bitsLog);
    this.bits[b >>> 5] = (this.bits[b >>> 5] as number) | (1 << (b & 31));
  }

  /** About 32 bits per filed hash (a false hit at one position in 32 or fewer), all set anew. */
  private rebuildBits(): void {
    this.bitsLog = Math.max(10, Math.ceil(Math.log2(this.byHash.size * 32)));
    this.bits = new Int32Array(2 ** this.bitsLog / 32);
    this.stale = 0;
    for (const hash of this.byHash.keys()) this.mark(hash);
  }
}

/**
 * The work of every {@link SkeletonIndex} in the process: `checks` counts the skeletons compared with
 * the text at a place where one's first or last 12 letters and digits stand. Read by tests, which bound
 * it (test/masking-shared-heads.test.ts); nothing else reads it.
 */
export const skeletonWork = { checks: 0 };

/**
 * How many characters `text` read from `from` by `step` (1: onwards, -1: backwards) has in common with
 * `s` from its start. One check of {@link skeletonWork}.
 */
function common(text: string, from: number, step: 1 | -1, s: string): number {
  skeletonWork.checks += 1;
  let n = 0;
  for (let k = from; n < s.length && k >= 0 && k < text.length && text.charCodeAt(k) === s.charCodeAt(n); k += step) n += 1;
  return n;
}

/**
 * The most characters any of `sorted` (distinct strings, in `<` order) has in common with `text` read
 * from `from` by `step`: of strings in order, the one sharing the longest head with a probe stands next
 * to where the probe would go, and a binary search compares the probe with both of those last, so the
 * most it met is the most of all — about log2(n) comparisons however many share a head, not one each.
 */
function longestCommon(sorted: readonly string[], text: string, from: number, step: 1 | -1): number {
  let lo = 0;
  let hi = sorted.length;
  let most = 0;
  // `lo`: how many of `sorted` come before the probe or equal it.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const s = sorted[mid] as string;
    const n = common(text, from, step, s);
    if (n > most) most = n;
    const k = from + n * step;
    const probeFirst = n < s.length && (k < 0 || k >= text.length || text.charCodeAt(k) < s.charCodeAt(n));
    if (probeFirst) hi = mid;
    else lo = mid + 1;
  }
  return most;
}

/** `s` put into (`add`) or taken out of the ascending, distinct `sorted`. */
function sortedChange(sorted: string[], s: string, add: boolean): void {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as string) < s) lo = mid + 1;
    else hi = mid;
  }
  if (add) sorted.splice(lo, 0, s);
  else if (sorted[lo] === s) sorted.splice(lo, 1);
}

/**
 * The secrets' skeletons (their letters and digits, lower-cased, 12 or more: masking.ts `maskSkeletons`),
 * and where a text's skeleton holds one, whole or cut off after (or before) its first (or last) 12.
 * Each place the text holds a skeleton's first 12 is masked as far as the skeleton sharing the most
 * with the text from there goes, and each place it holds a last 12 back as far as the one sharing the
 * most before it: the spans every skeleton holding those 12 would make, each inside that longest one.
 * Skeletons sharing their ends are kept in order under them and the longest found by a binary search
 * ({@link longestCommon}): comparing each with the text at each place cost O(skeletons × text) — 1,000
 * minted tokens sharing 30 characters took 33 s for 1 MiB of text holding those 30 characters, 2,000
 * ran out of heap with their spans (test/masking-shared-heads.test.ts counts the comparisons).
 */
export class SkeletonIndex {
  private readonly heads = new FormIndex(12);
  private readonly tails = new FormIndex(12);
  /** The skeletons by their first 12, in order. */
  private readonly byHead = new Map<string, string[]>();
  /** The skeletons by their last 12, each reversed, in order. */
  private readonly byTail = new Map<string, string[]>();
  /** How many secrets (configured or minted) have each skeleton. */
  private readonly held = new Map<string, number>();

  /** How many distinct skeletons it holds. */
  get size(): number {
    return this.held.size;
  }

  add(skeleton: string): void {
    const count = this.held.get(skeleton) ?? 0;
    this.held.set(skeleton, count + 1);
    if (count) return;
    this.file(this.heads, this.byHead, skeleton.slice(0, 12), skeleton, true);
    this.file(this.tails, this.byTail, skeleton.slice(-12), [...skeleton].reverse().join(''), true);
  }

  remove(skeleton: string): void {
    const count = this.held.get(skeleton);
    if (!count) return;
    if (count > 1) return void this.held.set(skeleton, count - 1);
    this.held.delete(skeleton);
    this.file(this.heads, this.byHead, skeleton.slice(0, 12), skeleton, false);
    this.file(this.tails, this.byTail, skeleton.slice(-12), [...skeleton].reverse().join(''), false);
  }

  /**
   * The spans of `sk` (a text's skeleton) to mask, as [first, last] indexes of `sk`: one for each place
   * holding a skeleton's first 12 and one for each place holding a last 12, in no particular order.
   */
  spans(sk: string): [number, number][] {
    const out: [number, number][] = [];
    this.heads.each(sk, (form, i) => {
      const n = longestCommon(this.byHead.get(form.text) as string[], sk, i, 1);
      out.push([i, i + n - 1]);
    });
    this.tails.each(sk, (form, i) => {
      const n = longestCommon(this.byTail.get(form.text) as string[], sk, i + 11, -1);
      out.push([i + 12 - n, i + 11]);
    });
    return out;
  }

  private file(ends: FormIndex, groups: Map<string, string[]>, end: string, member: string, add: boolean): void {
    let group = groups.get(end);
    if (!group) {
      if (!add) return;
      group = [];
      groups.set(end, group);
      ends.add(end, 0);
    }
    sortedChange(group, member, add);
    if (group.length) return;
    groups.delete(end);
    ends.remove(end, 0);
  }
}

/**
 * Every form of the secrets a masker knows, filed so that a text is searched for all of them at a
 * cost near-independent of how many there are, and a secret is added or removed at the cost of its
 * own forms (an App's installation tokens come and go one by one: bench/README.md, "thirty-sixth
 * session"). A secret's rank is its place in the list of secrets (the configured ones, then the
 * minted ones in the order they were minted); a form's rank is the secret's times 64 plus the form's
 * place among its forms (fewer than 64: secret-forms.ts `formsOf`).
 */
export class SecretIndex {
  readonly values = new FormIndex(6);
  readonly weak = new FormIndex(6);
  readonly cores = new FormIndex(8);
  /** Each secret's skeleton (12 letters and digits or more). */
  readonly skeletons = new SkeletonIndex();
  /** The shown forms of the strong secrets without a skeleton (secret-forms.ts `OneSecretForms.shown`). */
  readonly shown = new FormIndex(8);
  /**
   * The hash of each piece of 8 characters of each secret of 12 or more ({@link gramHashes}), and the
   * ranks of the secrets that hold it (ascending, once per place). A hash two pieces share only makes
   * a secret tried that leaves the text as it is.
   */
  readonly edgeGrams = new Map<number, number[]>();
  readonly edgeOf = new Map<number, string>();

  /**
   * The texts whose cut-off pieces are masked for the secret of `rank`, and the rank each is filed at:
   * the secret, and the secret with U+FFFD for each lone surrogate (secret-forms.ts `wellFormed`) at
   * `rank + 0.5`, right after it — what reaches the masker once the secret went through UTF-8 (a child's
   * output, a git trace), masked whole as a form of its own and left in clear when cut off at an edge
   * (test/a2-surrogate-edge-masking.test.ts).
   */
  private static edgeTexts(secret: string, rank: number): [string, number][] {
    const whole = wellFormed(secret);
    return whole === secret
      ? [[secret, rank]]
      : [
          [secret, rank],
          [whole, rank + 0.5],
        ];
  }

  add(secret: string, rank: number, forms: OneSecretForms): void {
    forms.values.forEach((v, i) => this.values.add(v, rank * 64 + i));
    forms.weak.forEach((w, i) => this.weak.add(w, rank * 64 + i));
    forms.cores.forEach((c, i) => this.cores.add(c, rank * 64 + i));
    for (const skeleton of forms.skeletons) this.skeletons.add(skeleton);
    if (forms.shown) this.shown.add(forms.shown, rank);
    if (forms.edge)
      for (const [edge, at] of SecretIndex.edgeTexts(secret, rank)) {
        this.edgeOf.set(at, edge);
        for (const gram of gramHashes(edge, 8, EDGE_TOP)) {
          const ranks = this.edgeGrams.get(gram);
          if (ranks) insertRank(ranks, at);
          else this.edgeGrams.set(gram, [at]);
        }
      }
  }

  remove(secret: string, rank: number, forms: OneSecretForms): void {
    forms.values.forEach((v, i) => this.values.remove(v, rank * 64 + i));
    forms.weak.forEach((w, i) => this.weak.remove(w, rank * 64 + i));
    forms.cores.forEach((c, i) => this.cores.remove(c, rank * 64 + i));
    for (const skeleton of forms.skeletons) this.skeletons.remove(skeleton);
    if (forms.shown) this.shown.remove(forms.shown, rank);
    if (forms.edge)
      for (const [edge, at] of SecretIndex.edgeTexts(secret, rank)) {
        this.edgeOf.delete(at);
        for (const gram of gramHashes(edge, 8, EDGE_TOP)) {
          const ranks = this.edgeGrams.get(gram) as number[];
          ranks.splice(ranks.indexOf(at), 1);
          if (!ranks.length) this.edgeGrams.delete(gram);
        }
      }
  }
}
