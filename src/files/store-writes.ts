/**
 * At most `limit` writes to an object store at once in this process. An S3 chunk write holds a
 * pooled database connection (its claim's transaction) for as long as the PUT takes: a slow bucket
 * must not take every connection of the pool, or GraphQL would wait behind it.
 */
export class StoreWrites {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
