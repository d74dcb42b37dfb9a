/**
 * Shares an async call among callers, but only a call that started after the caller asked: a caller
 * who arrives while one is in flight waits for the next one, which starts when the current one
 * settles and serves everyone who arrived meanwhile. So however many callers wait, at most one
 * call is in flight and one is queued, and each caller's answer is never older than its question.
 */
export class FreshCall {
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  /** `call` should settle its own outcome: a rejection reaches every caller sharing that run (the next run still starts). */
  constructor(private readonly call: () => Promise<void>) {}

  run(): Promise<void> {
    if (!this.inFlight) {
      const started = this.call().finally(() => {
        if (this.inFlight === started) this.inFlight = undefined;
      });
      this.inFlight = started;
      return started;
    }
    const next = () => {
      this.queued = undefined;
      return this.run();
    };
    this.queued ??= this.inFlight.then(next, next);
    return this.queued;
  }
}
