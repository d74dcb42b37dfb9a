/**
 * Progress for long CLI tasks on stderr: a redrawn bar on a terminal, one line per tenth of the
 * work otherwise (CI logs), and always a final line.
 */
export class ProgressBar {
  private lastTenth = -1;
  /** A terminal line is drawn and not yet ended. */
  private lineOpen = false;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly formatCount: (count: number) => string = String,
  ) {}

  /** `detail` follows the counts, e.g. "12.0 MB, 48.2 MB/s". */
  update(done: number, total: number, detail?: string): void {
    const fraction = total === 0 ? 1 : Math.min(done / total, 1);
    const text =
      `${this.label} ${this.bar(fraction)} ${Math.round(fraction * 100)}% ` +
      `(${this.formatCount(done)}/${this.formatCount(total)})${detail ? ` ${detail}` : ''}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${text}`);
      this.lineOpen = fraction < 1;
      if (fraction === 1) this.stream.write('\n');
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth > this.lastTenth) {
      this.lastTenth = tenth;
      this.stream.write(`${text}\n`);
    }
  }

  /** The final line, whatever was printed before (an estimated total may have been passed early). */
  finish(done: number, detail?: string): void {
    this.lastTenth = -1;
    this.update(done, done, detail);
  }

  /** Ends a half-drawn terminal line, so an error that follows starts on a line of its own. */
  abandon(): void {
    if (this.lineOpen) this.stream.write('\n');
    this.lineOpen = false;
  }

  private bar(fraction: number): string {
    const width = 24;
    const filled = Math.round(fraction * width);
    return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  }
}
