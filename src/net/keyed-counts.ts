/**
 * How many of something each key holds (open sockets per address, uploads in flight per account).
 * A key back at zero is forgotten, so the map holds only the keys in use.
 */
export class KeyedCounts {
  private readonly counts = new Map<string, number>();

  of(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  add(key: string, delta: number): void {
    const next = this.of(key) + delta;
    if (next <= 0) this.counts.delete(key);
    else this.counts.set(key, next);
  }

  /** Takes one for `key`, unless it holds `limit` already. */
  take(key: string, limit: number): boolean {
    if (this.of(key) >= limit) return false;
    this.add(key, 1);
    return true;
  }
}
