import { Writable } from 'node:stream';

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A pino destination that keeps every JSON line, so tests can assert on logs. */
export class LogCollector extends Writable {
  readonly lines: LogLine[] = [];
  private buffer = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim()) this.lines.push(JSON.parse(line) as LogLine);
    }
    done();
  }

  /** Every line as raw text, for "this secret never appears anywhere" checks. */
  text(): string {
    return this.lines.map((line) => JSON.stringify(line)).join('\n');
  }

  find(predicate: (line: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(predicate);
  }
}
