/**
 * Finds a configured secret in what a commit adds, before it is made: the agent holds its own API key
 * (and the tests whatever `sandbox.env` passes them), and a prompt-injected agent can write it into a
 * file — `env | base64 > notes.txt` — which the service would commit and push, readable by anyone who
 * can read the branch, with no network at all. The masker knows each secret's forms (whole, base64 or
 * hex, wrapped or spaced; src/rmapp/masking.ts `holdsSecret`); a program that wants to leak what it
 * holds can still disguise it beyond them (README, "Sandbox and threat model").
 */
import { StringDecoder } from 'node:string_decoder';

/** Added text checked at once; the end of each window is checked again with the next one. */
const WINDOW_CHARS = 1024 * 1024;
/**
 * What a window keeps of the one before, so a secret's form cut by the window's edge is seen whole:
 * more than the longest form of a secret the service holds (a 4,096-bit private key's base64 wrapped
 * in lines is ~4.5 KB).
 */
const OVERLAP_CHARS = 16 * 1024;

/**
 * Reads `git diff --text -U0` output chunk by chunk (memory bounded whatever the diff's size) and
 * remembers the first file whose added lines, or whose name, hold a secret.
 */
export class AddedSecretScanner {
  /** The `diff --git` line of the first file found holding a secret, or null. */
  found: string | null = null;
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private header = '';
  private inHunk = false;
  private added = '';

  constructor(private readonly holdsSecret: (text: string) => boolean) {}

  /** Feed the next chunk of the diff. */
  write(chunk: Buffer): void {
    if (this.found !== null) return;
    const lines = (this.partial + this.decoder.write(chunk)).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  /** The diff ended: check what is left. */
  end(): string | null {
    const rest = this.partial + this.decoder.end();
    if (rest) this.line(rest);
    this.check(true);
    return this.found;
  }

  private line(line: string): void {
    if (this.found !== null) return;
    if (line.startsWith('diff --git ')) {
      this.check(true);
      this.header = line;
      this.inHunk = false;
      // A file's name may be the secret (or hold it).
      if (this.holdsSecret(line)) this.found = line;
      return;
    }
    if (line.startsWith('@@')) {
      this.inHunk = true;
      return;
    }
    // Before the first hunk, `+++ b/…` names the file; inside a hunk a `+` line is an added one
    // (even one whose text starts with `++ `).
    if (!this.inHunk || !line.startsWith('+')) return;
    this.added += `${line.slice(1)}\n`;
    if (this.added.length > WINDOW_CHARS) this.check(false);
  }

  private check(fileEnded: boolean): void {
    if (this.found === null && this.added && this.holdsSecret(this.added)) this.found = this.header;
    this.added = fileEnded ? '' : this.added.slice(-OVERLAP_CHARS);
  }
}
