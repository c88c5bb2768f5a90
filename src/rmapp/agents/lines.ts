/**
 * Splits a byte stream into lines (JSON Lines, aider's text), decoding each whole line as UTF-8 (a
 * chunk boundary may fall inside a character). A line longer than `maxLineBytes` is not kept whole:
 * its first `maxLineBytes` bytes are passed on with `truncated: true` and the rest, up to the next
 * newline, is skipped — an agent printing a 10 MB line cannot grow the service's memory.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private bytes = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string, truncated: boolean) => void,
    private readonly maxLineBytes = 4 * 1024 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.take(chunk.subarray(start, nl));
      this.emit();
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start));
  }

  /** The last line, if the stream did not end with a newline. */
  end(): void {
    if (this.bytes > 0 || this.skipping) this.emit();
  }

  private take(piece: Buffer): void {
    if (this.skipping || piece.length === 0) return;
    const room = this.maxLineBytes - this.bytes;
    if (piece.length > room) {
      this.parts.push(piece.subarray(0, room));
      this.bytes += room;
      this.skipping = true;
      return;
    }
    this.parts.push(piece);
    this.bytes += piece.length;
  }

  private emit(): void {
    const line = Buffer.concat(this.parts, this.bytes).toString('utf8');
    const truncated = this.skipping;
    this.parts = [];
    this.bytes = 0;
    this.skipping = false;
    this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line, truncated);
  }
}
